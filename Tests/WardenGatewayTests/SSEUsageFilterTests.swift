import NIOCore
import Testing
@testable import WardenGateway

@Suite("SSE usage filter")
struct SSEUsageFilterTests {
    let withUsage = [
        #"data: {"id":"c","choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"prompt_tokens":7,"total_tokens":8,"completion_tokens":1}}"# + "\n\n",
        #"data: {"id":"c","choices":[{"index":0,"delta":{"content":"b"}}],"usage":{"prompt_tokens":7,"total_tokens":9,"completion_tokens":2}}"# + "\n\n",
        #"data: {"id":"c","choices":[],"usage":{"prompt_tokens":7,"total_tokens":9,"completion_tokens":2}}"# + "\n\n",
        "data: [DONE]\n\n",
    ]
    let plain = [
        #"data: {"id":"c","choices":[{"index":0,"delta":{"content":"a"}}]}"# + "\n\n",
        #"data: {"id":"c","choices":[{"index":0,"delta":{"content":"b"}}]}"# + "\n\n",
        "data: [DONE]\n\n",
    ]

    func run(_ filter: inout SSEUsageFilter, chunkSize: Int) -> String {
        let bytes = Array(withUsage.joined().utf8)
        var output: [UInt8] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunkSize)
            output += filter.process(ByteBuffer(bytes: bytes[offset..<end]))
            offset = end
        }
        return String(decoding: output + filter.flush(), as: UTF8.self)
    }

    @Test("whatever the chunking, injected usage is removed exactly and the last usage is kept", arguments: [1, 7, 64, 4096])
    func stripsInjectedUsage(chunkSize: Int) {
        var filter = SSEUsageFilter(clientAskedForUsage: false, clientAskedForContinuousUsage: false)
        #expect(run(&filter, chunkSize: chunkSize) == plain.joined())
        #expect(filter.usage?.prompt == 7)
        #expect(filter.usage?.completion == 2)
    }

    @Test("a client that asked for the final usage keeps that event only; one that asked for all keeps everything")
    func keepsWhatWasAskedFor() {
        var finalOnly = SSEUsageFilter(clientAskedForUsage: true, clientAskedForContinuousUsage: false)
        #expect(run(&finalOnly, chunkSize: 5) == plain[0] + plain[1] + withUsage[2] + withUsage[3])
        var everything = SSEUsageFilter(clientAskedForUsage: true, clientAskedForContinuousUsage: true)
        #expect(run(&everything, chunkSize: 5) == withUsage.joined())
    }
}
