import Foundation
import Kapsel
import KapselArrow
import KapselPython
import KapselTestJobs
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
                let seven = try await python.eval("7.0")
                let sevenBack = try await python.call("repr", .double(7))
                #expect(seven == .double(7) && sevenBack == "7.0", "an integral float stays a float both ways")
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

        @Test func numpyViewsASharedArrayInPlaceWithoutCopying() async throws {
            try await withSession { daemons, python in
                let count = 25_000_000   // 200 MB
                let input = try SharedArray<Double>(count: count) { values in
                    for index in values.indices { values[index] = Double(index % 1000) }
                }
                _ = try await python.call("numpy.zeros", 1)   // numpy loaded before measuring
                let before = try await daemons.submit(DaemonMemory()).value
                let sum = try await python.call("numpy.sum", .array(PythonArray(input)))
                let after = try await daemons.submit(DaemonMemory()).value
                #expect(sum.double == Double(count / 1000) * 499_500)
                let growthMB = (after.residentAnonymousKB - before.residentAnonymousKB) / 1024
                #expect(growthMB < 32, "numpy summed 200 MB where it lies; the daemon's private memory grew \(growthMB) MB")

                try await python.exec("""
                    def write(a):
                        try:
                            a[0] = 1
                            return "written"
                        except ValueError:
                            return "read-only"
                    def keep(a):
                        global kept
                        kept = a
                    """)
                let written = try await python.call("write", .array(PythonArray(input)))
                #expect(written == "read-only", "memory that was sent is frozen, in Python too")
                _ = try await python.call("keep", .array(PythonArray(input)))
                let viewed = try await python.viewedBufferCount()
                #expect(viewed == 1, "Python holds its view")
                try await python.exec("kept = None")
                let released = try await python.viewedBufferCount()
                #expect(released == 0, "the buffer goes back when Python's last view is gone")
            }
        }

        @Test func aColumnMajorTensorArrivesWithItsStrides() async throws {
            try await withSession { _, python in
                var matrix = try SharedTensor<Double>(shape: [3, 4], layout: .columnMajor)
                matrix.withUnsafeMutableBufferPointer { values in
                    for index in values.indices { values[index] = Double(index) }
                }
                try await python.exec("def describe(a):\n    return [list(a.shape), list(a.strides), bool(a.flags.f_contiguous), float(a[1, 2])]")
                let description = try await python.call("describe", .array(PythonArray(matrix)))
                #expect(description == [[3, 4], [8, 24], true, .double(matrix[1, 2])])
            }
        }

        @Test func aNumpyResultReachesSwiftInSharedMemory() async throws {
            try await withSession { _, python in
                let before = MemoryUsage.current()
                let result = try await python.call("numpy.arange", 0, 10_000_000, keywords: ["dtype": "int64"])
                let after = MemoryUsage.current()
                let array = try #require(result.array)
                let tensor = try array.tensor(of: Int64.self)
                #expect(tensor.shape == [10_000_000])
                let right = tensor.withUnsafeBufferPointer { values in values.indices.allSatisfy { values[$0] == Int64($0) } }
                #expect(right)
                let growthMB = (after.residentAnonymousKB - before.residentAnonymousKB) / 1024
                #expect(growthMB < 40, "80 MB arrived as shared memory; the host's private memory grew \(growthMB) MB")
                let matrix = try await python.eval("__import__('numpy').arange(6, dtype='float32').reshape(2, 3).T")
                let transposed = try #require(matrix.array)
                let floats = try transposed.tensor(of: Float.self)
                #expect(floats.shape == [3, 2] && floats[2, 1] == 5)
                #expect(throws: PythonError.self) { try transposed.tensor(of: Double.self) }
            }
        }

        @Test func tablesCrossToPyarrowAndBackWithNullsAndStrings() async throws {
            try await withSession { _, python in
                let table = try SharedTable([
                    .primitive("price", [1.5, nil, 3.0]), .utf8("name", ["a", nil, "ç"]), .bool("ok", [true, false, nil]),
                ])
                try await python.exec("""
                    def describe(batch):
                        return batch.to_pydict()
                    def keep(batch):
                        global kept
                        kept = batch
                        return batch.num_rows
                    def echo(batch):
                        return batch
                    """)
                let described = try await python.call("describe", .table(table))
                #expect(described == ["price": [1.5, nil, 3.0], "name": ["a", nil, "ç"], "ok": [true, false, nil]])
                let rows = try await python.call("keep", .table(table))
                #expect(rows == 3)
                let held = try await python.exportedTableCount()
                #expect(held > 0, "pyarrow holds the exported table")
                try await python.exec("kept = None")
                let released = try await python.exportedTableCount()
                #expect(released == 0, "pyarrow's release callback gave the memory back")

                let made = try await python.eval("__import__('pyarrow').record_batch({'x': [1, None, 3], 's': ['p', 'q', None]})")
                let back = try #require(made.table)
                let x = try #require(back["x"])
                let text = try #require(back["s"])
                #expect(back.rowCount == 3 && x.value(0, as: Int64.self) == 1 && x.isNull(1) && x.value(2, as: Int64.self) == 3)
                #expect(text.string(0) == "p" && text.string(1) == "q" && text.isNull(2))
                let echoed = try await python.call("echo", .table(table))
                #expect(echoed == .table(table), "a table goes to pyarrow and comes back the same")
            }
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

        @Test func environmentsSeeOnlyTheirOwnPackagesAndChangeOnlyInsideManage() async throws {
            let root = temporaryPath("environments")
            defer { try? FileManager.default.removeItem(atPath: root) }
            let runtime = TestPythons.primary
            let oldWheel = try buildTestWheel(version: "1.0", into: root + "/wheels")
            let newWheel = try buildTestWheel(version: "2.0", into: root + "/wheels")
            let first = try PythonEnvironment("first", runtime: runtime, root: root)
            let second = try PythonEnvironment("second", runtime: runtime, root: root)
            let config = try String(contentsOfFile: first.directory + "/config.json", encoding: .utf8)
            #expect(config.contains(runtime.fingerprint))
            #expect(throws: PythonError.self, "an environment belongs to its runtime") {
                try PythonEnvironment("first", runtime: TestPythons.other, root: root)
            }
            try await withTestDaemons(2) { daemons in
                let one = try await daemons.manage(first, onDaemon: 0) { try await $0.install(["--no-index", oldWheel]) }
                let two = try await daemons.manage(second, onDaemon: 1) { try await $0.install(["--no-index", newWheel]) }
                let versionOne = try await one.eval("__import__('kapselprobe').__version__")
                let versionTwo = try await two.eval("__import__('kapselprobe').__version__")
                #expect(versionOne == "1.0" && versionTwo == "2.0", "each environment sees its own package")
                let upgraded = try await daemons.manage(first, onDaemon: 0) { try await $0.install(["--no-index", newWheel]) }
                let versionAfter = try await upgraded.eval("__import__('kapselprobe').__version__")
                #expect(versionAfter == "2.0", "the fresh session sees the change")
                await #expect(throws: JobError.self, "the old session stopped with its daemon") { try await one.eval("1") }
                await #expect(throws: JobError.self, "a daemon's Python runs one environment") {
                    try await daemons.spawn(PythonSession.self, configuration: second.sessionConfiguration, on: .daemon(0))
                }
            }
        }

        @Test func inProcessModeRunsPythonInTheHostItself() async throws {
            try await withTestDaemons(1) { daemons in
                let python = try await daemons.pythonSession(.init(runtime: TestPythons.primary), inProcess: true)
                let pid = try await python.eval("__import__('os').getpid()")
                #expect(pid == .int(Int(getpid())), "the interpreter runs in this process")
                let daemonSide = try await daemons.pythonSession(.init(runtime: TestPythons.primary))
                let daemonPID = try await daemonSide.eval("__import__('os').getpid()")
                #expect(daemonPID != .int(Int(getpid())))
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

/// Builds a wheel of the one-module test package `kapselprobe` at `version` from source
/// (with the standard library's zipfile: no network, no build tools); returns its path.
func buildTestWheel(version: String, into directory: String) throws -> String {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = "\(directory)/kapselprobe-\(version)-py3-none-any.whl"
    let script = """
        import base64, hashlib, sys, zipfile
        version, path = sys.argv[1], sys.argv[2]
        info = "kapselprobe-%s.dist-info" % version
        files = {
            "kapselprobe/__init__.py": "__version__ = %r\\n" % version,
            info + "/METADATA": "Metadata-Version: 2.1\\nName: kapselprobe\\nVersion: %s\\n" % version,
            info + "/WHEEL": "Wheel-Version: 1.0\\nGenerator: kapsel-tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
        }
        record = []
        with zipfile.ZipFile(path, "w") as wheel:
            for name, text in files.items():
                data = text.encode()
                wheel.writestr(name, data)
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
            record.append(info + "/RECORD,,")
            wheel.writestr(info + "/RECORD", "\\n".join(record) + "\\n")
        """
    let outcome = try runProcess(TestPythons.primary.executable, arguments: ["-c", script, version, path], environment: [:])
    guard outcome.status == 0 else { throw PythonError(type: "WheelError", message: outcome.output) }
    return path
}
