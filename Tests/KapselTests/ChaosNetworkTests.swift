@testable import Kapsel
import KapselTestJobs
import Testing

extension ProcessTests {
    /// Daemons over TLS in a network namespace of their own, behind a link that loses
    /// packets, queues them and is cut mid-transfer: every job resolves exactly once.
    @Suite("A chaotic network")
    struct ChaosNetworkTests {
        @Test func tlsDaemonsBehindALossyLinkThatIsCutMidTransferResolveEveryJobOnce() async throws {
            let namespace = try NetworkNamespace()
            defer { namespace.remove() }
            try namespace.shape(rateMbit: 400, latencyMilliseconds: 100)
            try await withTestDaemons(2, configure: { options in
                options.remote.listen = "tls+tcp://\(namespace.hostAddress):0"
                options.launch = .command("/usr/sbin/ip netns exec \(namespace.name) {command}")
                options.remote.heartbeat = HeartbeatSettings(interval: .milliseconds(200), timeout: .seconds(2))
            }) { daemons in
                // Loss: 3 % of the packets each way, while 400 jobs go through.
                try namespace.dropRandomly(percent: 3)
                let lossy = (0..<400).map { daemons.submit(Sleep(milliseconds: 2, value: $0), retries: 2) }
                var lost = 0
                for (index, handle) in lossy.enumerated() {
                    switch await handle.result {
                    case .success(let value): #expect(value == index)
                    case .failure(let error):
                        #expect(error.code == .connectionLost, "job \(index): \(error)")
                        lost += 1
                    }
                }
                try namespace.dropRandomly(percent: 0)

                // A cut: the link goes down in the middle of a 200 MB transfer and of 200
                // jobs, for longer than the heartbeat allows, and comes back.
                let count = 25_000_000
                let input = try SharedArray<Double>(count: count) { values in
                    for index in values.indices { values[index] = Double(index % 1000) }
                }
                let big = daemons.submit(SumAndDouble(input: input))
                let during = (0..<200).map { daemons.submit(Sleep(milliseconds: 20, value: $0), retries: 2) }
                try await Task.sleep(for: .milliseconds(700))
                try namespace.setLink(up: false)
                try await Task.sleep(for: .seconds(3))
                try namespace.setLink(up: true)

                switch await big.result {
                case .success(let output):
                    let whole = output.doubled.withUnsafeBufferPointer { doubled in
                        doubled.count == count && doubled.indices.allSatisfy { doubled[$0] == 2 * Double($0 % 1000) }
                    }
                    #expect(whole && output.sum == Double(count / 1000) * 499_500, "the 200 MB came back, but not whole")
                case .failure(let error):
                    #expect(error.code == .connectionLost, "the 200 MB transfer failed, but not cleanly: \(error)")
                }
                for (index, handle) in during.enumerated() {
                    switch await handle.result {
                    case .success(let value): #expect(value == index)
                    case .failure(let error):
                        #expect(error.code == .connectionLost, "job \(index): \(error)")
                        lost += 1
                    }
                }
                #expect(daemons.repeatedResolutions == 0, "a job resolved twice")
                print("chaos: 600 jobs, \(lost) lost with their connection, the rest values; 200 MB \(big.isResolved ? "resolved" : "unresolved") as \((try? await big.value) == nil ? "connectionLost" : "a whole value")")

                // New daemons come in over the restored link and work.
                #expect(await eventually(within: .seconds(30)) { daemons.status().daemons.allSatisfy(\.online) })
                let answers = try await daemons.mapValues(0..<20) { Echo($0) }
                #expect(answers == Array(0..<20))
            }
        }
    }
}
