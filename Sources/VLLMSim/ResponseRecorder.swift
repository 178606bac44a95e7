import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Keeps the body bytes of the last response the simulator wrote, exactly as written: tests compare them with what
/// a client received through the gateway (byte for byte). Installed only when a test asks for it.
final class ResponseRecorder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let store: NIOLockedValueBox<[UInt8]>
    private var current: [UInt8] = []

    init(store: NIOLockedValueBox<[UInt8]>) {
        self.store = store
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head: current = []
        case .body(.byteBuffer(let buffer)): current += buffer.readableBytesView
        case .body: break
        case .end:
            let body = current
            store.withLockedValue { $0 = body }
        }
        context.write(data, promise: promise)
    }
}
