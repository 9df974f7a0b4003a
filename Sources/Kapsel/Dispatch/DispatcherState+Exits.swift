import DequeModule

#if canImport(Glibc)
import Glibc
#endif

/// Daemons that end in the dispatcher's state machine: process exits, lost daemons
/// deployed by hand, failed starts, and slots given up.
extension DispatcherState {
    /// How long the host goes on reading the connection of a daemon whose process ended
    /// with work in flight before it takes the connection as read to the end.
    static let exitDrainGrace = Duration.milliseconds(100)

    /// The process of `slot` has ended and been reaped. With jobs in flight and its
    /// connection still open, the slot ends when the connection closes (or after
    /// `exitDrainGrace`): results the daemon wrote before it died are read first, so
    /// the job blamed for the death is the one it was running, not one it had finished.
    mutating func processExited(slot index: Int, instance: Int, termination: ProcessTermination, output: String?) -> [DispatcherAction] {
        guard slots[index].instance == instance else { return [] }
        if phase == .running, slots[index].isOnline, !slots[index].inFlight.isEmpty, slots[index].departure.exit == nil {
            slots[index].noteExit(termination, output: output)
            return [.schedule(.exitDrain(slot: index, instance: instance), after: Self.exitDrainGrace)]
        }
        return slotEnded(index, instance: instance, termination: termination, output: output)
    }

    /// The connection of a daemon whose process ended was read to its end (`exitDrain`
    /// fired, or it closed): the slot ends.
    mutating func exitDrained(slot index: Int, instance: Int) -> [DispatcherAction] {
        guard slots[index].instance == instance, let exit = slots[index].departure.exit else { return [] }
        return slotEnded(index, instance: instance, termination: exit.termination, output: exit.output)
    }

    /// The daemon of `slot` is gone: its process ended (`termination`), or, for a daemon
    /// deployed by hand, its connection did (nil). What it held resolves or waits again,
    /// and the slot starts over (or parks, or is given up).
    mutating func slotEnded(_ index: Int, instance: Int, termination: ProcessTermination?, output: String?) -> [DispatcherAction] {
        let neverOnline = slots[index].isStarting
        let pid = slots[index].process?.pid
        let launchTimedOut = slots[index].launchTimedOut ? scaling.launchTimeout : nil
        let departure = slots[index].departure
        var actions: [DispatcherAction] = []
        if let link = slots.disconnect(index) { actions.append(.close(link)) }
        slots.revokeToken(of: index)
        if phase == .stopping {
            slots[index].state = .stopped
            return actions + stoppedActions()
        }
        let identity = DaemonIdentity(index: index, instance: instance, pid: pid)
        actions += actorsLost(index, instance: instance, pid: pid, termination: termination, output: output)
        // A daemon that exits because its connection broke (a cut link noticed on its
        // side first) lost the connection: it did not crash.
        let lostHost = termination == .exited(code: DaemonExitCode.hostLost.rawValue)
        let cause = departure.killCause ?? (lostHost ? .connectionFailed("the daemon lost its connection to the host and exited") : nil)
        let retirement = departure.retiring ?? termination.flatMap(Self.retirement)
        let inFlight = slots[index].inFlight
        slots[index].inFlight = []
        slots[index].pace.headLost()
        if !neverOnline {
            switch (cause, retirement) {
            case (.connectionFailed(let reason), _): actions.append(.observe(.connectionFailed(identity, reason: reason)))
            case (.unresponsive, _): break
            case (nil, let retirement?): actions.append(.observe(.retired(identity, reason: "\(retirement)")))
            case (nil, nil):
                let jobType = inFlight.first.flatMap { jobs[$0]?.jobType }
                actions.append(.observe(.crashed(identity, termination: termination, output: output, jobType: jobType)))
            }
        }

        // The daemon runs what it was sent in order: the first job still held was
        // running, the rest never started and simply go back to wait.
        var waitAgain: [UInt64] = []
        for (position, id) in inFlight.enumerated() {
            guard let record = jobs.attemptEnded(id) else { continue }
            if let deadline = record.deadline { actions.append(.cancelTimer(deadline)) }
            if position > 0 {
                waitAgain.append(id)
                continue
            }
            if record.setupTemplate != nil { slots[index].startFailures += 1 }
            if jobs.consumeRetry(id) {
                actions.append(.observe(.retried(job: id, jobType: record.jobType, daemon: identity)))
                waitAgain.append(id)
                continue
            }
            let crashes = jobs.remove(id).map(\.crashes) ?? 1
            let times = crashes > 1 ? " (its daemon died under it \(crashes) times: the limit is \(crashes - 1) retries)" : ""
            let error: JobError = switch cause {
            case .connectionFailed(let reason):
                JobError(.connectionLost, "the connection to the daemon failed: \(reason)\(times)", jobType: record.jobType, daemon: identity, termination: termination)
            case .unresponsive, nil:
                JobError(.crashed, "the daemon died with \(Self.explain(termination)) while running the job\(times)", jobType: record.jobType, daemon: identity, termination: termination, daemonOutput: output)
            }
            actions.append(.resolve(record.resolver, .failure(error)))
        }
        if neverOnline {
            slots[index].startFailures += 1
            let what = launchTimedOut.map { "it did not connect within \($0) and was stopped" } ?? "it exited with \(Self.explain(termination)) before connecting"
            slots[index].lastFailure = what + (output.map { "; its output:\n\($0)" } ?? "")
            actions.append(.observe(.launchFailed(slot: index, instance: instance, reason: what)))
        } else if cause == nil, retirement == nil {
            slots[index].crashed += 1
            slots[index].lastFailure = "it died with \(Self.explain(termination))" + (output.map { "; its output:\n\($0)" } ?? "")
        }
        // Setup jobs return to the slot (rebuildSetup orders them); other jobs wait at
        // the front of the queue they came from.
        for id in waitAgain.reversed() {
            if mode == .dispatcher, jobs[id]?.setupTemplate == nil {
                jobs.requeueFirst(id)
            } else {
                slots[index].pinned.prepend(id)
            }
        }

        if slots[index].startFailures >= maxStartFailures {
            actions += failSlot(index)
        } else if retirement == .idle, waitAgain.isEmpty, !slots[index].pinned.contains(where: { jobs[$0]?.setupTemplate == nil }) {
            // Retired for want of work: started again when jobs wait.
            slots[index].state = .parked
            rebuildSetup(index)
        } else {
            rebuildSetup(index)
            actions += relaunch(index)
            if !neverOnline { actions.append(.observe(.replaced(slot: index, instance: slots[index].instance))) }
        }
        actions += dispatchToIdle()
        actions += readinessActions()
        return actions
    }

    /// The retirement a daemon's own exit code says, if it says one.
    private static func retirement(_ termination: ProcessTermination) -> DaemonExitCode? {
        guard case .exited(let code) = termination, let known = DaemonExitCode(rawValue: code), known.isRetirement else { return nil }
        return known
    }

    /// A termination, with the meaning of a daemon's own exit codes (nil: a daemon known
    /// only by its connection, which was lost).
    static func explain(_ termination: ProcessTermination?) -> String {
        guard let termination else { return "the loss of its connection" }
        if case .exited(let code) = termination, code != 0, let known = DaemonExitCode(rawValue: code) {
            return "\(termination) (\(known))"
        }
        return "\(termination)"
    }

    /// A slot could not start a process.
    mutating func startFailed(_ index: Int, _ reason: String) -> [DispatcherAction] {
        slots[index].startFailures += 1
        slots[index].lastFailure = reason
        var actions: [DispatcherAction] = [.observe(.launchFailed(slot: index, instance: slots[index].instance, reason: reason))]
        if slots[index].startFailures >= maxStartFailures {
            actions += failSlot(index)
        } else {
            actions += relaunch(index)
        }
        actions += readinessActions()
        return actions
    }

    /// Puts the setup jobs of every template first in a new instance's pinned queue,
    /// keeping the records of setup runs someone awaits.
    private mutating func rebuildSetup(_ index: Int) {
        let pinned = slots[index].pinned
        var rebuilt: Deque<UInt64> = []
        for (templateIndex, template) in jobs.templates.enumerated() {
            if let existing = pinned.first(where: { jobs[$0]?.setupTemplate == templateIndex }) {
                rebuilt.append(existing)
            } else {
                let id = jobs.makeInternalID()
                jobs.add(JobQueue.Record(id: id, jobType: template.jobType, envelope: template.envelope, resolver: SetupRunRecorder(), timeout: nil,
                                         retriesLeft: 0, setupTemplate: templateIndex, call: nil))
                rebuilt.append(id)
            }
        }
        rebuilt.append(contentsOf: pinned.filter { jobs[$0]?.setupTemplate == nil })
        slots[index].pinned = rebuilt
    }

    /// Gives up on a slot that keeps failing to start; when no slot is left, every waiting
    /// job fails. A pool that scales then parks its slots again: the next work that waits
    /// gives the launcher another try.
    private mutating func failSlot(_ index: Int) -> [DispatcherAction] {
        slots[index].state = .failed
        var actions = actorsOnFailedSlot(index)
        actions.append(.observe(.slotGivenUp(slot: index, reason: slots[index].lastFailure ?? "it failed to start \(maxStartFailures) times in a row")))
        var failed = Array(slots[index].pinned)
        slots[index].pinned = []
        let noneLeft = slots.allSatisfy(\.hasFailed)
        if noneLeft { failed += jobs.takeAllWaiting() }
        for id in failed {
            guard let record = jobs.remove(id) else { continue }
            actions.append(.resolve(record.resolver, .failure(unavailableError(jobType: record.jobType))))
        }
        if noneLeft, scaling.isElastic { slots.parkFailed() }
        return actions
    }

    /// The error of a job no daemon can run, with the launcher and why each slot failed.
    func unavailableError(jobType: String) -> JobError {
        let reasons = slots.all.compactMap { slot in slot.lastFailure.map { "daemon \(slot.index): \($0)" } }
        return JobError(.launchFailed, "no daemon can run the job: their launches failed (launcher: \(launcherDescription)). " + reasons.joined(separator: "; "), jobType: jobType)
    }
}
