import NIOCore
import NIOHTTP1
@testable import WardenGateway

extension ClientHead {
    /// A head as the gateway's parser reads it from a client's bytes: the request line, then `fields` in order.
    /// `compact`: no space after each colon, as a client may write it.
    static func request(_ method: HTTPMethod = .POST, _ uri: String = "/v1/completions", version: HTTPVersion = .http1_1,
                        fields: [(String, String)] = [], compact: Bool = false) -> ClientHead {
        var text = "\(method.rawValue) \(uri) HTTP/\(version.major).\(version.minor)"
        for (name, value) in fields { text += "\r\n\(name):\(compact ? "" : " ")\(value)" }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { try! ClientHead($0) }
    }
}
