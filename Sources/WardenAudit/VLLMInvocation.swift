import WardenConfig

/// A `vllm serve` (or `python -m vllm.entrypoints.openai.api_server`) command line and what it sets.
public struct VLLMInvocation: Sendable, Equatable {
    /// The `vllm` entry point or the Python interpreter.
    public var executable: String
    /// Everything after `serve` (or after the module name), option names normalised to dashes.
    public var arguments: [String]

    /// Recognises a vLLM API server among a process's arguments.
    public init?(argv: [String]) {
        if let serve = argv.indices.first(where: { $0 > 0 && argv[$0] == "serve" && lastComponent(argv[$0 - 1]) == "vllm" }) {
            executable = argv[serve - 1]
            arguments = argv[(serve + 1)...].map(Self.normalised)
        } else if let module = argv.indices.first(where: { $0 > 0 && argv[$0 - 1] == "-m" && argv[$0] == "vllm.entrypoints.openai.api_server" }) {
            executable = argv[0]
            arguments = argv[(module + 1)...].map(Self.normalised)
        } else {
            return nil
        }
    }

    /// The `vllm serve` command of a shell script or an `ExecStart=` line (continuation lines joined).
    public init?(script: String) {
        let joined = script.replacing("\\\n", with: " ")
        for line in joined.split(separator: "\n") where !line.trimmed().hasPrefix("#") {
            if let found = VLLMInvocation(argv: shellWords(String(line))) {
                self = found
                return
            }
        }
        return nil
    }

    /// `--some_option=value` → `--some-option=value`, as vLLM's parser accepts both spellings.
    private static func normalised(_ argument: String) -> String {
        guard argument.hasPrefix("--") else { return argument }
        let name = argument.prefix { $0 != "=" }
        return String(name.replacing("_", with: "-")) + argument.dropFirst(name.count)
    }

    public func has(_ flag: String) -> Bool { arguments.contains { $0 == flag || $0.hasPrefix(flag + "=") } }

    /// Every value given to an option (`--opt v`, `--opt=v`, and for list options `--opt v1 v2`).
    public func values(_ option: String) -> [String] {
        var values: [String] = []
        for (index, argument) in arguments.enumerated() {
            if argument.hasPrefix(option + "=") {
                values.append(String(argument.dropFirst(option.count + 1)))
            } else if argument == option {
                values += arguments[(index + 1)...].prefix { !$0.hasPrefix("-") }
            }
        }
        return values
    }

    public func value(_ option: String) -> String? { values(option).last }

    /// The model: the first positional argument, else `--model`.
    public var model: String? {
        if let first = arguments.first, !first.hasPrefix("-") { return first }
        return value("--model")
    }

    /// `--host`; `nil` means vLLM binds every interface.
    public var host: String? { value("--host").flatMap { $0.isEmpty ? nil : $0 } }
    public var port: Int { value("--port").flatMap(Int.init) ?? 8000 }

    /// The virtual environment holding the executable (`<venv>/bin/vllm`).
    public var venv: String? {
        let directory = parentDirectory(of: executable)
        return directory.hasSuffix("/bin") ? parentDirectory(of: directory) : nil
    }
}

func lastComponent(_ path: String) -> Substring { path.split(separator: "/").last ?? "" }

/// Splits a shell command line into words: quotes and backslashes as in POSIX sh; variables stay literal.
func shellWords(_ line: String) -> [String] {
    var words: [String] = []
    var current = ""
    var inWord = false
    var quote: Character?
    var escaped = false
    for character in line {
        if escaped {
            current.append(character)
            escaped = false
        } else if let open = quote {
            if character == open { quote = nil } else if character == "\\" && open == "\"" { escaped = true } else { current.append(character) }
        } else if character == "\\" {
            escaped = true
            inWord = true
        } else if character == "'" || character == "\"" {
            quote = character
            inWord = true
        } else if character.isWhitespace {
            if inWord { words.append(current) }
            current = ""
            inWord = false
        } else {
            current.append(character)
            inWord = true
        }
    }
    if inWord { words.append(current) }
    return words
}
