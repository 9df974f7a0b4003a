import Foundation
import Testing
@testable import Kapsel

/// The secret file a batch job's daemon reads its secret from (`KAPSEL_SECRET_FILE`).
@Suite("Daemon configuration: the secret file")
struct SecretFileTests {
    func write(_ text: String, mode: mode_t) -> String {
        let path = temporaryPath("secret")
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        chmod(path, mode)
        return path
    }

    @Test func theFirstLineIsTheSecretAndTheFileIsGoneOnceRead() throws {
        let path = write("00ff\nrest\n", mode: 0o600)
        #expect(try DaemonConfiguration.takeSecret(fromFile: path) == "00ff")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aFileOthersMayReadIsRefusedAndDeleted() {
        let path = write("00ff\n", mode: 0o644)
        #expect(throws: DaemonConfigurationError.self) { try DaemonConfiguration.takeSecret(fromFile: path) }
        do {
            _ = try DaemonConfiguration.takeSecret(fromFile: write("00ff\n", mode: 0o640))
        } catch {
            #expect(error.description.contains("may be read by others (mode 640)"))
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aMissingOrEmptyFileSaysSo() {
        do {
            _ = try DaemonConfiguration.takeSecret(fromFile: "/nonexistent/secret")
            Issue.record("a missing file gave a secret")
        } catch {
            #expect(error.description.contains("cannot read the secret file /nonexistent/secret"))
        }
        do {
            _ = try DaemonConfiguration.takeSecret(fromFile: write("", mode: 0o600))
            Issue.record("an empty file gave a secret")
        } catch {
            #expect(error.description.contains("is empty"))
        }
    }
}
