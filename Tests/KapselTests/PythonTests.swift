import Foundation
import Kapsel
import KapselPython
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The interpreters the tests embed: the one on `PATH` (`python3`) and Debian's, which
/// `.ci/run` installs; both built with a shared library.
enum TestPythons {
    static let primary: PythonRuntime = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/python3"
            if access(candidate, X_OK) == 0, let runtime = try? PythonRuntime(executable: candidate) { return runtime }
        }
        return try! PythonRuntime(executable: "/usr/bin/python3")
    }()

    static let other: PythonRuntime = try! PythonRuntime(executable: "/usr/bin/python3")
}

extension ProcessTests {
    @Suite("Python embedded in a daemon: sessions, values, handles, errors, isolation, runtimes")
    struct PythonTests {
        func withSession<R>(
            _ runtime: PythonRuntime = TestPythons.primary, daemons count: Int = 1,
            _ body: (Daemons, PythonSession) async throws -> R
        ) async throws -> R {
            try await withTestDaemons(count) { daemons in
                let session = try await daemons.spawn(PythonSession.self, configuration: .init(runtime: runtime))
                return try await body(daemons, session)
            }
        }

        @Test func evalExecAndCallConvertEveryPlainType() async throws {
            try await withSession { _, python in
                try await python.exec("import math\nx = 41")
                let value1 = try await python.eval("x + 1")
                #expect(value1 == 42)
                let value2 = try await python.eval("math.sqrt(2.25)")
                #expect(value2 == 1.5)
                let value3 = try await python.eval("'héllo' * 2")
                #expect(value3 == "héllohéllo")
                let value4 = try await python.eval("None")
                #expect(value4 == .none)
                let value5 = try await python.eval("3 > 2")
                #expect(value5 == true)
                let value6 = try await python.eval("[1, 2.5, 'a', None, True, (3, 4)]")
                #expect(value6 == [1, 2.5, "a", nil, true, [3, 4]])
                let value7 = try await python.eval("{'a': {'b': [1]}, 'c': 'd'}")
                #expect(value7 == ["a": ["b": [1]], "c": "d"])
                let value8 = try await python.call("round", 2.675, 2)
                #expect(value8 == 2.67)
                let value9 = try await python.call("sorted", [3, 1, 2], keywords: ["reverse": true])
                #expect(value9 == [3, 2, 1])
                let value10 = try await python.call("os.path.join", "a", "b")
                #expect(value10 == "a/b")
                try await python.importModule("json", as: "j")
                let value11 = try await python.call("j.dumps", ["k": [1, nil]])
                #expect(value11 == #"{"k": [1, null]}"#)
                let echoed = try await python.call("str.upper", "swift")
                #expect(echoed == "SWIFT")
            }
        }

        @Test func objectsStayInTheDaemonBehindHandlesReleasedWhenDropped() async throws {
            try await withSession { _, python in
                try await useACounter(python)
                var remaining = try await python.objectCount()
                for _ in 0..<100 where remaining != 0 {
                    try await Task.sleep(for: .milliseconds(50))
                    remaining = try await python.objectCount()
                }
                #expect(remaining == 0, "dropping the handles frees the objects in the daemon")
            }
        }

        /// Works with a `collections.Counter` through handles, all dropped on return.
        private func useACounter(_ python: PythonSession) async throws {
            let counter = try await python.call("collections.Counter", "abracadabra")
            let handle = try #require(counter.object)
            let type = try await handle.type
            #expect(type == "collections.Counter")
            let common = try await handle.call("most_common", arguments: [1])
            #expect(common == [["a", 5]])
            let method = try await handle.attribute("total")
            #expect(method.object != nil, "a bound method is an object too")
            let held = try await python.objectCount()
            #expect(held == 2)
            let text = try await handle.repr()
            #expect(text.hasPrefix("Counter("))
            let length = try await python.call("len", counter)
            #expect(length == 5, "a handle goes back to Python as its object")
        }

        @Test func aPythonExceptionArrivesWithTypeMessageAndTraceback() async throws {
            try await withSession { _, python in
                try await python.exec("def inner(x):\n    return 1 / x\ndef outer():\n    return inner(0)\n")
                do {
                    _ = try await python.call("outer")
                    Issue.record("no exception")
                } catch let error as JobError {
                    let python = try #require(PythonError(error))
                    #expect(python.type == "ZeroDivisionError")
                    #expect(python.message == "division by zero")
                    #expect(python.traceback.contains("in inner") && python.traceback.contains("line 2"))
                }
                let missing = await #expect(throws: JobError.self) { try await python.call("no_such_module.thing") }
                #expect(missing.flatMap(PythonError.init)?.type == "NameError")
            }
        }

        @Test(arguments: ["import ctypes; ctypes.string_at(0)", "import os; os._exit(7)"])
        func codeThatKillsItsDaemonFailsOnlyThatCall(code: String) async throws {
            try await withSession(daemons: 2) { daemons, python in
                _ = try await python.eval("1")
                do {
                    try await python.exec(code)
                    Issue.record("the daemon survived")
                } catch let error as JobError {
                    #expect(error.code == .crashed)
                    #expect(error.termination == (code.contains("_exit") ? .exited(code: 7) : .signaled(signal: SIGSEGV)))
                }
                let fresh = try await daemons.spawn(PythonSession.self, configuration: .init(runtime: TestPythons.primary))
                let value16 = try await fresh.eval("6 * 7")
                #expect(value16 == 42, "a new session starts at once")
            }
        }

        @Test func aHangingCallTimesOutAndTheSessionGoesOn() async throws {
            try await withSession { _, python in
                let start = ContinuousClock.now
                await #expect(throws: JobError.self) {
                    try await KapselActorSystem.$callTimeout.withValue(.milliseconds(300)) {
                        try await python.exec("while True: pass")
                    }
                }
                #expect(ContinuousClock.now - start < .seconds(5))
                let value17 = try await python.eval("'still here'")
                #expect(value17 == "still here", "the loop was interrupted inside Python")
            }
        }

        @Test func anotherInterpreterRunsWithoutRestartingTheHost() async throws {
            let first = try await withSession(TestPythons.primary) { _, python in try await python.eval("__import__('sys').version.split()[0]") }
            let second = try await withSession(TestPythons.other) { _, python in try await python.eval("__import__('sys').version.split()[0]") }
            #expect(first.string == TestPythons.primary.version && second.string == TestPythons.other.version)
            #expect(TestPythons.primary.fingerprint != TestPythons.other.fingerprint)
        }
    }
}
