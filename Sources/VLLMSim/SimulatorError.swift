/// An error the simulator answers with, in vLLM's error envelope.
struct SimulatorError: Error, Equatable {
    var status: Int
    var type: String
    var message: String
    var param: String?

    static func badRequest(_ message: String, param: String? = nil) -> SimulatorError {
        SimulatorError(status: 400, type: "BadRequestError", message: message, param: param)
    }

    static func validation(_ location: String, _ message: String) -> SimulatorError {
        .badRequest("1 validation error:\n  body.\(location): \(message)")
    }

    static func unknownModel(_ name: String) -> SimulatorError {
        SimulatorError(status: 404, type: "NotFoundError", message: "The model `\(name)` does not exist.", param: nil)
    }

    static func engineError(_ message: String) -> SimulatorError {
        SimulatorError(status: 500, type: "InternalServerError", message: message, param: nil)
    }

    /// `{"error":{...}}` as current vLLM writes it, or the flat `"object":"error"` form of vLLM ≤ 0.9.
    func json(legacy: Bool) -> String {
        var fields = "\"message\":"
        fields.appendJSONString(message)
        fields += ",\"type\":"
        fields.appendJSONString(type)
        fields += ",\"param\":"
        if let param { fields.appendJSONString(param) } else { fields += "null" }
        fields += ",\"code\":\(status)"
        return legacy ? "{\"object\":\"error\",\(fields)}" : "{\"error\":{\(fields)}}"
    }
}

import WardenJSON
