import NIOConcurrencyHelpers

/// The Responses API ids vLLM issued through this gateway, with the key that created each and the tokens its
/// context holds. vLLM's response store is shared by every caller; the gateway keeps it per key: a key retrieves,
/// cancels or continues (`previous_response_id`) only its own responses, and a continuation is reserved with the
/// context vLLM will prepend. Bounded: the oldest ids are forgotten first (a forgotten id is refused, as is one
/// from before the gateway started).
final class ResponseRegistry: Sendable {
    struct Entry: Equatable {
        var key: String
        /// Input + output tokens of the response: what `previous_response_id` adds to the next prompt.
        var contextTokens: Int
    }

    private struct Storage {
        var entries: [String: Entry] = [:]
        var order: [String] = []
        var head = 0
    }

    let capacity: Int
    private let storage = NIOLockedValueBox(Storage())

    init(capacity: Int = 100_000) {
        self.capacity = max(1, capacity)
    }

    func record(_ id: String, key: String, contextTokens: Int) {
        storage.withLockedValue { storage in
            if storage.entries.updateValue(Entry(key: key, contextTokens: contextTokens), forKey: id) != nil { return }
            storage.order.append(id)
            if storage.order.count - storage.head > capacity {
                storage.entries[storage.order[storage.head]] = nil
                storage.head += 1
                if storage.head >= capacity {
                    storage.order.removeFirst(storage.head)
                    storage.head = 0
                }
            }
        }
    }

    /// The entry when `id` belongs to `key`; `nil` for an unknown id or another key's (indistinguishable to the caller).
    func lookup(_ id: String, key: String) -> Entry? {
        storage.withLockedValue { $0.entries[id] }.flatMap { $0.key == key ? $0 : nil }
    }
}
