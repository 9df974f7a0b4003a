/// Prints benchmark figures as JSON lines, one per figure, named as in BENCHMARKS.md:
/// `{"workload":"W1","variant":"job","metric":"rtt_us_p50","value":21.4}`; `extra`
/// figures (a spread, say) and a `note` follow on the same line.
enum BenchReport {
    static func emit(_ workload: String, _ variant: String? = nil, _ metric: String, _ value: Double, extra: KeyValuePairs<String, Double> = [:], note: String? = nil) {
        var fields = ["\"workload\":\"\(workload)\""]
        if let variant { fields.append("\"variant\":\"\(variant)\"") }
        fields.append("\"metric\":\"\(metric)\"")
        fields.append("\"value\":\(format(value))")
        for (name, figure) in extra { fields.append("\"\(name)\":\(format(figure))") }
        if let note { fields.append("\"note\":\"\(note)\"") }
        print("{" + fields.joined(separator: ",") + "}")
    }

    private static func format(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        let rounded = (value * 100).rounded() / 100
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}
