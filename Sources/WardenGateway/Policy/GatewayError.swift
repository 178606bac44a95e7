import NIOHTTP1
import WardenJSON

/// An error the gateway answers itself, in OpenAI's envelope: `{"error":{"message","type","param","code"}}`.
public struct GatewayError: Error, Sendable, Equatable {
    public var status: HTTPResponseStatus
    public var type: String
    public var code: String
    public var message: String
    public var param: String?
    /// Extra response headers (`Retry-After`, …).
    public var headers: [(String, String)] = []
    /// The access-log decision, e.g. `rejected:auth`.
    public var decision: String

    public static func == (lhs: GatewayError, rhs: GatewayError) -> Bool {
        lhs.status == rhs.status && lhs.code == rhs.code && lhs.message == rhs.message
    }

    public var body: String {
        var json = "{\"error\":{\"message\":"
        json.appendJSONString(message)
        json += ",\"type\":"
        json.appendJSONString(type)
        json += ",\"param\":"
        if let param { json.appendJSONString(param) } else { json += "null" }
        json += ",\"code\":"
        json.appendJSONString(code)
        return json + "}}"
    }

    static func badRequest(_ message: String, code: String = "invalid_request", param: String? = nil) -> GatewayError {
        GatewayError(status: .badRequest, type: "invalid_request_error", code: code, message: message, param: param, decision: "rejected:bad_request")
    }

    static func unauthorized(_ failure: KeyTable.Failure) -> GatewayError {
        let message: String
        switch failure {
        case .missing: message = "Missing API key: send `Authorization: Bearer sk-warden-…`."
        case .malformed: message = "Malformed API key: expected `Authorization: Bearer sk-warden-<id>-<secret>`."
        case .unknown: message = "Invalid API key."
        case .revoked: message = "This API key has been revoked."
        case .expired: message = "This API key has expired."
        }
        return GatewayError(status: .unauthorized, type: "invalid_request_error", code: "invalid_api_key", message: message,
                            headers: [("WWW-Authenticate", "Bearer")], decision: "rejected:auth_\(failure.rawValue)")
    }

    static func notFound(_ method: String, _ path: String) -> GatewayError {
        GatewayError(status: .notFound, type: "invalid_request_error", code: "unknown_endpoint",
                     message: "\(method) \(path) is not served by this gateway.", decision: "rejected:not_allowed")
    }

    /// A stored response this key did not create (or the gateway no longer remembers): never forwarded.
    static func unknownResponse(_ id: String) -> GatewayError {
        GatewayError(status: .notFound, type: "invalid_request_error", code: "response_not_found",
                     message: "No response `\(id)` was created with this API key through this gateway (responses are remembered while it runs).",
                     decision: "rejected:response_not_found")
    }

    static func modelNotAllowed(_ model: String) -> GatewayError {
        GatewayError(status: .forbidden, type: "permission_error", code: "model_not_allowed",
                     message: "This API key may not use the model `\(model)`.", param: "model", decision: "rejected:model")
    }

    static let bodyTooLarge = GatewayError(status: .payloadTooLarge, type: "invalid_request_error", code: "request_too_large",
                                           message: "The request body is larger than this gateway accepts.", decision: "rejected:body_too_large")

    static let headersTooLarge = GatewayError(status: .requestHeaderFieldsTooLarge, type: "invalid_request_error", code: "headers_too_large",
                                              message: "The request headers are larger than this gateway accepts.", decision: "rejected:headers_too_large")

    static let draining = GatewayError(status: .serviceUnavailable, type: "service_unavailable", code: "shutting_down",
                                       message: "The gateway is shutting down; retry on another instance.",
                                       headers: [("Retry-After", "5")], decision: "rejected:draining")

    static func upstreamUnavailable(_ detail: String) -> GatewayError {
        GatewayError(status: .serviceUnavailable, type: "service_unavailable", code: "upstream_unavailable",
                     message: "The model server is not reachable (\(detail)); retry shortly.",
                     headers: [("Retry-After", "5")], decision: "upstream_unavailable")
    }

    static func upstreamFailed(requestID: String, status: Int) -> GatewayError {
        GatewayError(status: .badGateway, type: "upstream_error", code: "upstream_error",
                     message: "The model server failed (status \(status)); request id \(requestID).", decision: "upstream_error")
    }

    static let upstreamCredentials = GatewayError(status: .badGateway, type: "upstream_error", code: "upstream_auth",
                                                  message: "The model server rejected the gateway's credentials; the operator must set VLLM_API_KEY for the gateway.",
                                                  decision: "upstream_auth")
}
