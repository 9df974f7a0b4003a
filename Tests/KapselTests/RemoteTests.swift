import Crypto
import Foundation
import Kapsel
import KapselTestJobs
import KapselWire
import Testing
import X509

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite("Daemons over TCP and TLS: zero-configuration TLS, certificates of your own, pins, secrets, command launchers")
    struct RemoteTests {
        @Test func zeroConfigurationTLSRunsJobsOnDaemonsStartedThroughACommand() async throws {
            try await withTestDaemons(2, configure: { options in
                options.remote.listen = "tls+tcp://127.0.0.1:0"
                options.launch = .command("env KAPSEL_TEST_WRAPPED=yes {command}")
            }) { daemons in
                let address = try HostAddress(parsing: daemons.url)
                #expect(address.transport == .tls && address.host == "127.0.0.1" && address.port != 0)
                guard case .pinnedCertificate(let pin) = daemons.tlsTrust else {
                    Issue.record("a generated certificate is pinned")
                    return
                }
                #expect(pin.count == 64)
                let values = try await [daemons.submit(Echo(1)).value, daemons.submit(Echo(2)).value]
                #expect(values == [1, 2])
                let wrapped = try await daemons.submit(ReadEnvironment("KAPSEL_TEST_WRAPPED")).value
                #expect(wrapped == "yes", "the template's own arguments reach the daemon")
                let secret = try await daemons.submit(ReadEnvironment("KAPSEL_SECRET")).value
                #expect(secret == nil, "the daemon scrubs the secret from its environment")
                #expect(daemons.status().connections == 2)
                let crashed = await daemons.submit(Crash(.segfault, in: .running)).result
                #expect(crashed.error?.code == .crashed)
                let answer = try await daemons.submit(Echo(3)).value
                #expect(answer == 3, "a daemon behind a command is relaunched like any other")
            }
        }

        @Test func aLauncherOfYourOwnStartsDaemonsFromTheirSelfContainedCommandLine() async throws {
            try await withTestDaemons(2, configure: { options in
                options.remote.listen = "tls+tcp://127.0.0.1:0"
                options.launch = .custom(BareEnvironmentLauncher())
            }) { daemons in
                let values = try await daemons.mapValues(0..<10) { Echo($0) }
                #expect(values == Array(0..<10))
                let marker = try await daemons.submit(ReadEnvironment("KAPSEL_TEST_BARE")).value
                #expect(marker == "yes", "the daemon ran under the launcher's own command")
            }
        }

        @Test func plainTCPWorksOnLoopbackV4AndV6AndIsRefusedElsewhereUnlessAllowed() async throws {
            for url in ["tcp://127.0.0.1:0", "tcp://[::1]:0"] {
                try await withTestDaemons(1, configure: { $0.remote.listen = url }) { daemons in
                    #expect(daemons.url.hasPrefix(url.replacing(":0", with: ":")))
                    #expect(daemons.tlsTrust == nil)
                    let answer = try await daemons.submit(Echo(7)).value
                    #expect(answer == 7)
                }
            }
            do {
                try await withTestDaemons(1, configure: { $0.remote.listen = "tcp://0.0.0.0:0" }) { _ in }
                Issue.record("plain TCP off loopback started")
            } catch let error as DaemonsError {
                #expect(error.message.contains("unencrypted"))
            }
            for bad in ["tcp://127.0.0.1", "tcp://::1:5", "udp://x:1", "tcp://[::1]:99999", "unix://relative"] {
                #expect(throws: DaemonsError.self, "\(bad)") { try HostAddress(parsing: bad) }
            }
        }

        @Test func aSilentDaemonIsDroppedWithinTheHeartbeatTimeAndANewOneJoins() async throws {
            try await withTestDaemons(1, configure: { options in
                options.remote.listen = "tcp://127.0.0.1:0"
                options.remote.heartbeat = HeartbeatSettings(interval: .milliseconds(100), timeout: .milliseconds(600))
            }) { daemons in
                let pid = try await daemons.submit(WhoAmI()).value.pid
                let busy = try await daemons.submit(BusyFor(milliseconds: 1500)).value
                #expect(busy, "a job computing without suspending does not silence the daemon's heartbeats")
                let handle = daemons.submit(Sleep(milliseconds: 10_000, value: 1))
                try await Task.sleep(for: .milliseconds(100))
                // A stopped process keeps its TCP connection open: the half-open case.
                kill(pid, SIGSTOP)
                defer { kill(pid, SIGKILL) }
                let clock = ContinuousClock()
                let start = clock.now
                let result = await handle.result
                let waited = clock.now - start
                #expect(result.error?.code == .connectionLost, "\(result)")
                #expect(result.error?.message.contains("no word from the daemon") == true, "\(result)")
                #expect(waited < .seconds(3), "noticed after \(waited)")
                let answer = try await daemons.submit(Echo(5)).value
                #expect(answer == 5)
                #expect(daemons.status().daemons[0].instance == 2)
            }
        }

        @Test func aDaemonWhoseHostIsNotThereFailsClearly() async throws {
            let process = try startDaemonProcess(url: "tcp://127.0.0.1:1", secret: HostSecret.random().hex)
            let outcome = finish(process)
            #expect(outcome.status == DaemonExitCode.cannotConnect.rawValue)
            #expect(outcome.output.contains("cannot connect to tcp://127.0.0.1:1"), "\(outcome.output)")
        }

        @Test func daemonsDeployedByHandJoinLeaveAndAreReplacedByNewOnes() async throws {
            let daemons = try await Daemons(2, options: testOptions { options in
                options.remote.listen = "tls+tcp://127.0.0.1:0"
                options.launch = .manual
            })
            var processes: [Process] = []
            let queued = daemons.submit(Echo(1))
            #expect(!queued.isResolved, "no daemon yet: the job waits")
            let commands = daemons.launchCommands()
            #expect(commands.count == 2)
            #expect(commands.allSatisfy { $0.contains("KAPSEL_TLS_PIN=") && $0.contains("KAPSEL_TOKEN=") && $0.hasSuffix(testDaemonPath) })
            processes.append(try startShell(commands[0]))
            #expect(await eventually(within: .seconds(10)) { queued.isResolved })
            let first = try await queued.value
            #expect(first == 1)
            #expect(daemons.launchCommands().count == 1)

            let whereabouts = try await daemons.submit(WhoAmI()).value
            let status = daemons.status()
            #expect(status.daemons[whereabouts.daemonIndex].address?.hasPrefix("127.0.0.1:") == true, "\(status)")
            #expect(status.description.contains("address"))
            let sleeping = daemons.submit(Sleep(milliseconds: 10_000, value: 0))
            try await Task.sleep(for: .milliseconds(100))
            kill(whereabouts.pid, SIGKILL)
            let lost = await sleeping.result
            #expect(lost.error?.code == .connectionLost, "\(lost)")

            let again = daemons.launchCommands()
            #expect(again.sorted() == commands.sorted(), "the slot whose daemon left waits for a daemon with the same command")
            processes += try again.map(startShell)
            let values = try await [daemons.submit(Echo(2)).value, daemons.submit(Echo(3)).value]
            #expect(values == [2, 3])
            #expect(await eventually { daemons.status().connections == 2 })
            await daemons.stop()
            for process in processes.dropFirst() {
                let outcome = finish(process)
                #expect(outcome.status == 0, "\(outcome.output)")
            }
        }

        @Test func aDaemonDeployedByHandWaitsForItsHostAndComesBackAfterABreak() async throws {
            let daemons = try await Daemons(1, options: testOptions { options in
                options.remote.listen = "tcp://127.0.0.1:0"
                options.launch = .manual
                options.remote.daemonsWaitForHost = .seconds(20)
            })
            let process = try startShell(daemons.launchCommands()[0])
            let before = try await daemons.submit(WhoAmI()).value
            // The daemon breaks its own connection: the host drops it, and it waits.
            let broken = await daemons.submit(CorruptConnection()).result
            #expect(broken.error?.code == .connectionLost, "\(broken)")
            #expect(await eventually(within: .seconds(10)) { daemons.status().connections == 1 }, "the same daemon reconnected")
            let after = try await daemons.submit(WhoAmI()).value
            #expect(after.pid == before.pid && after.instance == before.instance + 1)
            await daemons.stop()
            let outcome = finish(process)
            #expect(outcome.status == 0, "\(outcome.output)")
            #expect(outcome.output.contains("waiting up to 20.0 seconds for the host"), "\(outcome.output)")
        }

        @Test func aHungJobOnADaemonDeployedByHandIsStoppedByClosingItsConnection() async throws {
            let daemons = try await Daemons(1, options: testOptions { options in
                options.remote.listen = "tcp://127.0.0.1:0"
                options.launch = .manual
            })
            let process = try startShell(daemons.launchCommands()[0])
            let hung = await daemons.submit(Spin(), timeout: .milliseconds(200)).result
            #expect(hung.error?.code == .timedOut)
            let outcome = finish(process)
            #expect(outcome.status == DaemonExitCode.hostLost.rawValue, "the daemon's work stops with it: \(outcome.output)")
            #expect(daemons.launchCommands().count == 1)
            await daemons.stop()

            let neverJoined = try await Daemons(2, options: testOptions { options in
                options.remote.listen = "tcp://127.0.0.1:0"
                options.launch = .manual
            })
            let waiting = neverJoined.submit(Echo(1))
            await neverJoined.stop()
            let stopped = await waiting.result
            #expect(stopped.error?.code == .stopped)
        }

        @Test(arguments: [false, true])
        func sshStartsDaemonsThatRunJobsAndEndWithTheHost(tunnelled: Bool) async throws {
            let server = try SSHServer()
            let tunnelPort = try SSHServer.freePort()
            var pids: [Int32] = []
            try await withTestDaemons(2, configure: { options in
                options.remote.listen = tunnelled ? "tcp://127.0.0.1:0" : "tls+tcp://127.0.0.1:0"
                options.launch = .ssh(SSHLaunch(
                    destination: "\(server.user)@127.0.0.1", port: server.port, identityFile: server.clientKey, options: server.clientOptions,
                    tunnelPort: tunnelled ? tunnelPort : nil
                ))
            }) { daemons in
                let answers = try await daemons.mapValues(0..<20) { Echo($0) }
                #expect(answers == Array(0..<20))
                let secret = try await daemons.submit(ReadEnvironment("KAPSEL_SECRET")).value
                #expect(secret == nil)
                let url = try await daemons.submit(ReadEnvironment("KAPSEL_HOST_URL")).value
                #expect(url == nil, "read and scrubbed")
                pids = try await daemons.everywhere(WhoAmI()).map { try $0.get().pid }
                #expect(Set(pids).count == 2, "two daemons")
                #expect(daemons.status().daemons.allSatisfy { $0.online && $0.address?.hasPrefix("127.0.0.1:") == true })
            }
            #expect(await eventually { pids.allSatisfy { !processExists($0) } }, "the daemons end with the host")
            withExtendedLifetime(server) {}
        }

        @Test func sharedArraysAreStreamedToADaemonWithoutADescriptorChannelAndBack() async throws {
            try await withTestDaemons(1, configure: { options in
                options.remote.listen = "tls+tcp://127.0.0.1:0"
                options.launch = .command("{command}")
            }) { daemons in
                let count = 25_000_000   // 200 MB
                let input = try SharedArray<Double>(count: count) { values in
                    for index in values.indices { values[index] = Double(index % 1000) }
                }
                let before = MemoryUsage.current()
                let output = try await daemons.submit(SumAndDouble(input: input)).value
                let after = MemoryUsage.current()
                #expect(output.sum == Double(count / 1000) * 499_500)
                #expect(output.doubled.count == count)
                let intact = output.doubled.withUnsafeBufferPointer { doubled in
                    doubled.indices.allSatisfy { doubled[$0] == 2 * Double($0 % 1000) }
                }
                #expect(intact, "every value came back")
                let growthMB = (after.residentAnonymousKB - before.residentAnonymousKB) / 1024
                #expect(growthMB < 64, "the host streamed 200 MB each way with \(growthMB) MB of private memory")
            }
        }

        @Test func aStreamedAttachmentOverTheLimitBreaksOnlyItsConnection() async throws {
            try await withTestDaemons(1, configure: { options in
                options.remote.listen = "tcp://127.0.0.1:0"
                options.launch = .command("{command}")
                options.limits.maxAttachmentLength = 1 << 20
            }) { daemons in
                let input = try SharedArray<Double>(count: 1 << 18) { $0.initialize(repeating: 1) }   // 2 MiB
                let result = await daemons.submit(SumAndDouble(input: input)).result
                #expect(result.error?.code == .connectionLost, "\(result)")
                #expect(result.error?.message.contains("exceeds the limit") == true, "\(result)")
                let answer = try await daemons.submit(Echo(1)).value
                #expect(answer == 1)
            }
        }

        @Test func aDaemonInItsOwnNetworkNamespaceJoinsOverTLSAndOutlivesACutLink() async throws {
            let namespace = try NetworkNamespace()
            defer { namespace.remove() }
            try await withTestDaemons(1, configure: { options in
                options.remote.listen = "tls+tcp://\(namespace.hostAddress):0"
                options.launch = .command("/usr/sbin/ip netns exec \(namespace.name) {command}")
                options.remote.heartbeat = HeartbeatSettings(interval: .milliseconds(200), timeout: .seconds(1))
            }) { daemons in
                let first = try await daemons.submit(Echo(1)).value
                #expect(first == 1)
                let address = daemons.status().daemons[0].address
                #expect(address?.hasPrefix(namespace.daemonAddress + ":") == true, "the daemon connects from its namespace: \(address ?? "-")")

                let count = 25_000_000   // 200 MB each way
                let input = try SharedArray<Double>(count: count) { values in
                    for index in values.indices { values[index] = Double(index % 1000) }
                }
                let output = try await daemons.submit(SumAndDouble(input: input)).value
                #expect(output.sum == Double(count / 1000) * 499_500)
                let intact = output.doubled.withUnsafeBufferPointer { doubled in
                    doubled.count == count && doubled.indices.allSatisfy { doubled[$0] == 2 * Double($0 % 1000) }
                }
                #expect(intact)

                let sleeping = daemons.submit(Sleep(milliseconds: 30_000, value: 1))
                try await Task.sleep(for: .milliseconds(300))
                try namespace.setLink(up: false)
                let clock = ContinuousClock()
                let start = clock.now
                let lost = await sleeping.result
                let waited = clock.now - start
                try namespace.setLink(up: true)
                #expect(lost.error?.code == .connectionLost, "\(lost)")
                #expect(waited < .seconds(4), "the cut was noticed after \(waited)")

                #expect(await eventually(within: .seconds(30)) { daemons.status().daemons[0].online })
                let again = try await daemons.submit(Echo(2)).value
                #expect(again == 2)
                #expect(daemons.status().daemons[0].instance >= 2, "a new daemon joined after the cut")
            }
        }

        @Test func aDaemonPinningAnotherCertificateIsRefusedAndSaysWhy() async throws {
            try await withTestDaemons(1, configure: { $0.remote.listen = "tls+tcp://127.0.0.1:0" }) { daemons in
                let process = try startDaemonProcess(url: daemons.url, secret: HostSecret.random().hex, environment: ["KAPSEL_TLS_PIN": String(repeating: "ab", count: 32)])
                let outcome = finish(process)
                #expect(outcome.status == DaemonExitCode.refused.rawValue)
                #expect(outcome.output.contains("not the pinned sha256:abab"), "\(outcome.output)")
                #expect(await eventually { daemons.status().rejectedConnections == 1 })
                #expect(daemons.status().lastRejection?.contains("handshake") == true, "\(daemons.status().lastRejection ?? "")")
                let answer = try await daemons.submit(Echo(8)).value
                #expect(answer == 8)
            }
        }

        @Test func aDaemonWithTheRightCertificateButAWrongSecretIsRefused() async throws {
            try await withTestDaemons(1, configure: { $0.remote.listen = "tls+tcp://127.0.0.1:0" }) { daemons in
                guard case .pinnedCertificate(let pin) = daemons.tlsTrust else {
                    Issue.record("a generated certificate is pinned")
                    return
                }
                let process = try startDaemonProcess(url: daemons.url, secret: HostSecret.random().hex, environment: ["KAPSEL_TLS_PIN": pin])
                let outcome = finish(process)
                #expect(outcome.status == DaemonExitCode.refused.rawValue)
                #expect(outcome.output.contains("the host refused this daemon: authentication failed"), "\(outcome.output)")
                #expect(daemons.status().lastRejection?.contains("authentication failed") == true)
            }
        }

        @Test func aCertificateOfYourOwnIsVerifiedAgainstItsAuthority() async throws {
            let authority = try TestAuthority()
            let directory = temporaryPath("tls")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let authorityPath = directory + "/ca.pem"
            let otherPath = directory + "/other-ca.pem"
            try authority.certificatePEM.write(toFile: authorityPath, atomically: true, encoding: .utf8)
            try TestAuthority().certificatePEM.write(toFile: otherPath, atomically: true, encoding: .utf8)
            let leaf = try authority.issueLeaf(for: "localhost")

            try await withTestDaemons(1, configure: { options in
                options.remote.listen = "tls+tcp://localhost:0"
                options.remote.tls = .pem(chain: leaf.certificatePEM, privateKey: leaf.keyPEM)
                options.remote.tlsCertificateAuthority = authorityPath
            }) { daemons in
                #expect(daemons.tlsTrust == .certificateAuthority(path: authorityPath))
                let answer = try await daemons.submit(Echo(9)).value
                #expect(answer == 9)
                let process = try startDaemonProcess(url: daemons.url, secret: HostSecret.random().hex, environment: ["KAPSEL_TLS_CA": otherPath])
                let outcome = finish(process)
                #expect(outcome.status == DaemonExitCode.refused.rawValue)
                #expect(outcome.output.contains("TLS handshake with the host failed"), "\(outcome.output)")
            }
            await #expect(throws: DaemonsError.self) {
                try await withTestDaemons(1, configure: { options in
                    options.remote.listen = "tls+tcp://127.0.0.1:0"
                    options.remote.tls = .pem(chain: leaf.certificatePEM, privateKey: leaf.keyPEM)
                }) { _ in }
            }
        }
    }
}

/// A certificate authority made for one test, and the leaf certificates it signs.
struct TestAuthority {
    let key = P256.Signing.PrivateKey()
    let name: DistinguishedName
    let certificate: Certificate

    init() throws {
        name = try DistinguishedName { CommonName("Kapsel test CA \(UUID().uuidString.prefix(8))") }
        let now = Date()
        certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now - 300, notValidAfter: now + 86_400, issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
    }

    var certificatePEM: String {
        get throws { try certificate.serializeAsPEM().pemString }
    }

    /// A leaf certificate for a host name, and its key, as PEM.
    func issueLeaf(for hostName: String) throws -> (certificatePEM: String, keyPEM: String) {
        let leafKey = P256.Signing.PrivateKey()
        let now = Date()
        let leaf = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(leafKey.publicKey),
            notValidBefore: now - 300, notValidAfter: now + 86_400, issuer: name,
            subject: try DistinguishedName { CommonName(hostName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                SubjectAlternativeNames([.dnsName(hostName)])
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return (try leaf.serializeAsPEM().pemString, leafKey.pemRepresentation)
    }
}

/// A launcher plug-in that starts each daemon the way a remote machine would see it: in
/// an empty environment, from its self-contained command line, with the secret on its
/// standard input.
struct BareEnvironmentLauncher: Launcher {
    func shellCommand(for daemon: DaemonToLaunch) -> String {
        let command = daemon.remoteCommandLine(replacing: ["KAPSEL_TEST_BARE": "yes"])
        let quoted = "'" + command.replacing("'", with: "'\\''") + "'"
        return "printf '%s\\n' \"$KAPSEL_SECRET\" | env -i /bin/sh -c \(quoted)"
    }
}
