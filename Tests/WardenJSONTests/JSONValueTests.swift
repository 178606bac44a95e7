import Testing
import WardenJSON

@Suite("JSON reading and writing")
struct JSONValueTests {
    @Test("documents round-trip with key order and number literals intact")
    func roundTrip() throws {
        let text = #"{"model":"m","n":1,"temperature":0.70,"big":1e3,"stream":false,"stop":null,"messages":[{"role":"user","content":"a\"b\\c\n\u00e9"}]}"#
        let value = try JSONValue.parse(text)
        #expect(value.serialized == #"{"model":"m","n":1,"temperature":0.70,"big":1e3,"stream":false,"stop":null,"messages":[{"role":"user","content":"a\"b\\c\né"}]}"#)
        #expect(try JSONValue.parse(value.serialized) == value)
    }

    @Test("typed accessors read only their own type")
    func accessors() throws {
        let value = try JSONValue.parse(#"{"a":1,"b":"1","c":true,"d":2.5,"e":3.0,"f":[1]}"#)
        #expect(value["a"]?.intValue == 1)
        #expect(value["b"]?.intValue == nil)
        #expect(value["c"]?.boolValue == true)
        #expect(value["a"]?.boolValue == nil)
        #expect(value["d"]?.intValue == nil)
        #expect(value["e"]?.intValue == 3)
        #expect(value["f"]?.arrayValue?.count == 1)
        #expect(value["missing"] == nil)
    }

    @Test("setting a member replaces it in place or appends it, dropping duplicates")
    func setting() throws {
        let value = try JSONValue.parse(#"{"a":1,"stream_options":{"x":1},"b":2,"stream_options":null}"#)
        let updated = value.setting("stream_options", to: .object([("include_usage", .bool(true))]))
        #expect(updated.serialized == #"{"a":1,"stream_options":{"include_usage":true},"b":2}"#)
        #expect(value.setting("c", to: .null).serialized.hasSuffix(#","c":null}"#))
    }

    @Test("a duplicate key reads as the last one, as Python's json does")
    func duplicateKeys() throws {
        #expect(try JSONValue.parse(#"{"model":"a","model":"b"}"#)["model"]?.stringValue == "b")
    }

    @Test("surrogate pairs decode; lone surrogates are refused")
    func unicodeEscapes() throws {
        #expect(try JSONValue.parse(#""\ud83d\ude00""#).stringValue == "😀")
        #expect(throws: JSONParseError.self) { try JSONValue.parse(#""\ud83d""#) }
    }

    @Test("malformed documents are refused with an offset", arguments: [
        "", "{", "{\"a\"}", "{\"a\":}", "[1,]", "01", "1.", "-", "tru", "\"unterminated", "{\"a\":1} x", "\"\u{01}\"", "[1 2]",
    ])
    func malformed(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test("nesting deeper than the limit is refused instead of exhausting the stack")
    func depthLimit() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
        #expect(throws: Never.self) { try JSONValue.parse(String(repeating: "[", count: 60) + String(repeating: "]", count: 60)) }
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
    }
}
