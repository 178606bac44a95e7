import Foundation
import Testing
import WardenConfig

@Suite("Addresses and networks")
struct NetworkAddressTests {
    @Test("IPv4 and IPv6 networks match the addresses inside them")
    func networkContains() throws {
        let v4 = try #require(IPNetwork("10.1.0.0/16"))
        #expect(v4.contains(try #require(IPAddress("10.1.200.3"))))
        #expect(!v4.contains(try #require(IPAddress("10.2.0.1"))))
        let v6 = try #require(IPNetwork("2001:db8:1:2::/64"))
        #expect(v6.contains(try #require(IPAddress("2001:db8:1:2:ffff::1"))))
        #expect(!v6.contains(try #require(IPAddress("2001:db8:1:3::1"))))
        #expect(IPNetwork("::ffff:10.0.0.0/104")?.contains(try #require(IPAddress("10.9.9.9"))) == true)
        #expect(IPNetwork("1.2.3.4/33") == nil)
        #expect(IPNetwork("not-an-ip") == nil)
    }

    @Test("addresses print in their usual text form")
    func addressDescription() {
        #expect(IPAddress("192.168.0.1")?.description == "192.168.0.1")
        // Every digit count of an octet, and the longest form.
        for text in ["0.0.0.0", "9.10.99.100", "255.255.255.255", "127.0.0.1", "10.200.7.64"] {
            #expect(IPAddress(text)?.description == text)
        }
        #expect(IPAddress("::ffff:10.1.2.3")?.description == "10.1.2.3", "a mapped IPv4 address prints as IPv4")
        #expect(IPAddress("[2001:DB8::1]")?.description == "2001:db8::1")
        #expect(IPNetwork("10.0.0.0/8")?.description == "10.0.0.0/8")
    }

    @Test("listen addresses need a host and a port")
    func listenAddress() {
        #expect(ListenAddress("127.0.0.1:8080")?.port == 8080)
        #expect(ListenAddress("[::1]:9091")?.host == "::1")
        #expect(ListenAddress("localhost:80")?.description == "localhost:80")
        #expect(ListenAddress("8080") == nil)
        #expect(ListenAddress("127.0.0.1:0") == nil)
        #expect(ListenAddress("::1:80") == nil)
    }
}

@Suite("route templates: a parameter is exactly one plain segment")
struct RouteTemplateTests {
    @Test("templates match one id segment and nothing else")
    func matching() throws {
        let get = try #require(RouteTemplate("GET /v1/responses/{id}"))
        let cancel = try #require(RouteTemplate("POST /v1/responses/{response_id}/cancel"))
        #expect(get.matches(method: "GET", path: "/v1/responses/resp_0123abc"))
        #expect(cancel.matches(method: "POST", path: "/v1/responses/resp_1/cancel"))
        for path in ["/v1/responses/a/b", "/v1/responses/", "/v1/responses", "/v1/responses/..", "/v1/responses/.", "/v1/responses/a%2Fb",
                     "/v1/responses/a;b", "/v1/responses/a:b", "/v1/responses/résumé"] {
            #expect(!get.matches(method: "GET", path: path), "\(path)")
        }
        #expect(!get.matches(method: "POST", path: "/v1/responses/resp_1"))
        #expect(!cancel.matches(method: "POST", path: "/v1/responses/resp_1/cancel/x"))
        #expect(RouteCatalog.meter(for: cancel) == .requestOnly, "the parameter's name does not matter")
        for bad in ["GET /v1/{id", "FETCH /x", "GET v1", "GET /a/../b", "GET /a//b", "GET /a%2e", "GET"] {
            #expect(RouteTemplate(bad) == nil, "\(bad)")
        }
    }
}

@Suite("README: the route table lists every metered route")
struct RouteDocumentationTests {
    @Test("each route of the catalog appears in the README's table of meters")
    func everyRouteDocumented() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let table = try #require(text.components(separatedBy: "#### Routes and their meters").dropFirst().first)
        for route in RouteCatalog.meters.keys {
            let path = String(route.split(separator: " ")[1])
            #expect(table.contains("`\(route)`") || table.contains("`\(path)`") || table.contains(path.replacingOccurrences(of: "/v1/audio", with: "")),
                    "\(route) is not in the README's route table")
        }
    }
}
