/// A fixed offset from UTC in whole hours: `UTC`, `+02:00`, `-05`, `UTC+2`. Named zones (with daylight saving)
/// would need the tz database, which Warden does not carry; a fixed offset is exact for most of the world's
/// servers, which run on UTC anyway. Whole hours only, so quota days and months begin on an hour of the usage
/// ledger, and a restart settles them from it exactly.
public struct UTCOffset: Sendable, Equatable, CustomStringConvertible {
    public let seconds: Int64

    public static let utc = UTCOffset(hours: 0)

    init(hours: Int) { seconds = Int64(hours) * 3600 }

    public init?(_ text: String) {
        var rest = Substring(text.uppercased())
        if rest.hasPrefix("UTC") { rest = rest.dropFirst(3) } else if rest.hasPrefix("GMT") { rest = rest.dropFirst(3) }
        if rest.isEmpty || rest == "Z" {
            self = .utc
            return
        }
        guard let sign = rest.first, sign == "+" || sign == "-" else { return nil }
        let parts = rest.dropFirst().split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let hours = Int(parts[0]), (0...14).contains(hours), parts[0].count <= 2,
              parts.count == 1 || parts[1] == "00" else { return nil }
        self.init(hours: sign == "-" ? -hours : hours)
    }

    public var description: String {
        guard seconds != 0 else { return "UTC" }
        let hours = abs(seconds) / 3600
        return "UTC\(seconds < 0 ? "-" : "+")\(hours < 10 ? "0" : "")\(hours):00"
    }
}

/// Calendar days and months at a fixed offset, on seconds since the epoch: where the period holding an
/// instant begins and where the next begins. Pure arithmetic (civil-from-days), no time-zone database.
public struct QuotaCalendar: Sendable, Equatable {
    public enum Period: String, Sendable, CaseIterable {
        case day, month
    }

    public var offset: UTCOffset

    public init(offset: UTCOffset = .utc) { self.offset = offset }

    /// The first second of the period holding `time`, and of the one after it.
    public func bounds(of period: Period, at time: Int64) -> (start: Int64, end: Int64) {
        let local = time + offset.seconds
        let day = floorDivide(local, 86_400)
        switch period {
        case .day:
            return (day * 86_400 - offset.seconds, (day + 1) * 86_400 - offset.seconds)
        case .month:
            let (year, month, _) = Self.civil(fromDays: day)
            let start = Self.days(year: year, month: month, day: 1)
            let end = month == 12 ? Self.days(year: year + 1, month: 1, day: 1) : Self.days(year: year, month: month + 1, day: 1)
            return (start * 86_400 - offset.seconds, end * 86_400 - offset.seconds)
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let shifted = month <= 2 ? year - 1 : year
        let era = floorDivide(shifted, 400)
        let yearOfEra = shifted - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date `days` after 1970-01-01 (`civil_from_days`).
    public static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = floorDivide(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Midnight UTC of `YYYY-MM-DD`; nil for anything else, or a date that does not exist (2027-02-30).
    public static func parseDate(_ text: String) -> Int64? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.map(\.count) == [4, 2, 2], let year = Int64(parts[0]), let month = Int64(parts[1]),
              let day = Int64(parts[2]), (1...12).contains(month), (1...31).contains(day) else { return nil }
        let seconds = days(year: year, month: month, day: day) * 86_400
        return dateText(seconds) == text ? seconds : nil
    }

    /// `YYYY-MM-DD` of a UTC day start, for reports.
    public static func dateText(_ time: Int64) -> String {
        let (year, month, day) = civil(fromDays: floorDivide(time, 86_400))
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day))"
    }
}

/// `value / divisor` rounded toward minus infinity (days before 1970 are negative).
public func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
    value >= 0 ? value / divisor : -((-value + divisor - 1) / divisor)
}
