import Testing
@testable import WardenConfig

@Suite("the deployment file's YAML reader")
struct YAMLParserTests {
    func parse(_ text: String) throws -> YAMLNode? { try YAMLParser.parse(text) }

    func failure(_ text: String) -> YAMLError? {
        do {
            _ = try YAMLParser.parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test("block and flow forms, quoted and plain scalars, comments, and marks on every node")
    func forms() throws {
        let text = """
        # a comment
        vllm:
          model: /srv/models/x   # trailing comment
          host: '::1'
          extra_args: ["--max-num-seqs", "8"]
          environment: {HF_HUB_OFFLINE: "1", A: b}
        gateway:
          allowed_endpoints:
            - POST /v1/chat/completions
            - GET /v1/models
          bans:
            ignore_networks:
            - 127.0.0.0/8
            - ::1/128
          upstream: http://127.0.0.1:8000
          tls:
        """
        guard case .mapping(let root, _) = try #require(try parse(text)) else { Issue.record("not a mapping"); return }
        #expect(root.map(\.key.string) == ["vllm", "gateway"])
        guard case .mapping(let vllm, let mark) = root[0].value else { Issue.record("vllm"); return }
        #expect(mark == YAMLMark(line: 3, column: 3))
        #expect(vllm[0].value.string == "/srv/models/x")
        #expect(vllm[1].value.scalar?.quoted == true)
        guard case .sequence(let args, _) = vllm[2].value else { Issue.record("args"); return }
        #expect(args.map(\.string) == ["--max-num-seqs", "8"])
        guard case .mapping(let environment, _) = vllm[3].value else { Issue.record("environment"); return }
        #expect(environment.map { "\($0.key.string!)=\($0.value.string!)" } == ["HF_HUB_OFFLINE=1", "A=b"])
        guard case .mapping(let gateway, _) = root[1].value,
              case .sequence(let endpoints, _) = gateway[0].value,
              case .mapping(let bans, _) = gateway[1].value,
              case .sequence(let networks, _) = bans[0].value else { Issue.record("gateway"); return }
        #expect(endpoints.map(\.string) == ["POST /v1/chat/completions", "GET /v1/models"])
        #expect(endpoints[1].mark == YAMLMark(line: 10, column: 7))
        #expect(networks.map(\.string) == ["127.0.0.0/8", "::1/128"])
        #expect(gateway[2].value.string == "http://127.0.0.1:8000")
        #expect(gateway[3].value.isNull)
    }

    @Test("scalars keep YAML's types: plain numbers and booleans, quoted strings, null")
    func types() throws {
        guard case .mapping(let entries, _) = try #require(try parse("a: 8000\nb: '8000'\nc: 0.9\nd: yes\ne: ~\nf: \"x\\ty\\u00e9\"\ng: 1_000\n"))
        else { Issue.record("mapping"); return }
        #expect(entries[0].value.int == 8000)
        #expect(entries[1].value.int == nil)
        #expect(entries[2].value.float == 0.9)
        #expect(entries[3].value.bool == true)
        #expect(entries[4].value.isNull)
        #expect(entries[5].value.string == "x\tyé")
        #expect(entries[6].value.int == 1000)
    }

    @Test("mistakes are named with their line and column", arguments: [
        ("vllm:\n\tmodel: m\n", "tabs are not allowed in YAML indentation", 2, 1),
        ("vllm:\n  model: m\n  port: [8000\n", "unclosed '['", 3, 9),
        ("a: 1\na: 2\n", "duplicate key 'a'", 2, 1),
        ("a: b: c\n", "a plain value cannot contain ': '", 1, 5),
        ("a: &anchor x\n", "anchors, aliases and tags are not supported", 1, 4),
        ("a: |\n  text\n", "block scalars", 1, 4),
        ("a:\n  b: 1\n c: 2\n", "unexpected indentation", 3, 2),
        ("a: 'open\n", "unclosed quote", 1, 4),
    ])
    func mistakes(text: String, message: String, line: Int, column: Int) {
        let error = failure(text)
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        #expect(error?.mark == YAMLMark(line: line, column: column))
    }

    @Test("nesting is bounded (a file nested thousands deep exhausted the stack): 64 levels read, deeper is an error")
    func nestingBounded() throws {
        for (open, close) in [("[", "]"), ("{a: ", "}")] {
            let fine = "x: " + String(repeating: open, count: YAMLParser.maxDepth - 1) + "1" + String(repeating: close, count: YAMLParser.maxDepth - 1)
            #expect(try parse(fine) != nil)
            for depth in [YAMLParser.maxDepth, 100_000] {
                let deep = "x: " + String(repeating: open, count: depth) + "1" + String(repeating: close, count: depth)
                #expect(throws: YAMLError.self) { try parse(deep) }
                do { _ = try parse(deep) } catch { #expect((error as? YAMLError)?.message.contains("nested more than 64 levels deep") == true, "\(error)") }
            }
        }
        let block = (0..<1_000).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n") + " 1\n"
        do { _ = try parse(block); Issue.record("1,000 levels of block mappings were accepted") } catch {
            #expect((error as? YAMLError)?.message.contains("nested more than") == true)
        }
    }

    @Test("the writer's output reads back as the same document")
    func roundTrip() throws {
        let deployment = try Deployment.parse(yaml: """
            vllm: {model: /srv/models/m, extra_args: ["--x", "a: b"], environment: {K: "true", L: "0.5"}}
            gateway: {trusted_proxies: ["::1", "10.0.0.0/8"], allowed_endpoints: ["GET /v1/models"]}
            """)
        let yaml = try deployment.rendered(as: .yaml)
        #expect(try Deployment.parse(yaml: yaml) == deployment)
        #expect(yaml.contains(#"- "a: b""#))
        #expect(yaml.contains(#"K: "true""#))
        #expect(yaml.contains("gpu_memory_utilization: 0.9\n"))
    }
}
