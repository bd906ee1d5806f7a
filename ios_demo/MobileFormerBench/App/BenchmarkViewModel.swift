import Foundation
import SwiftUI

@MainActor
final class BenchmarkViewModel: ObservableObject {
    enum Engine { case executorch, coreml }

    /// "every" runs the four compute-unit settings one after another.
    static let everyUnit = "every"

    @Published var models: [URL] = []
    @Published var selected: URL?
    @Published var iterations = 50
    @Published var warmup = 10
    @Published var threads = 4
    @Published var computeUnits = BenchmarkViewModel.everyUnit
    @Published var running = false
    @Published var error: String?
    @Published var results: [ResultSummary] = []

    var engine: Engine? {
        guard let url = selected else { return nil }
        return url.pathExtension.lowercased() == "pte" ? .executorch : .coreml
    }

    func refresh() {
        models = ModelStore.models()
        if let s = selected, models.contains(s) { return }
        selected = models.first
    }

    func run() {
        guard let model = selected, let engine, !running else { return }
        running = true
        error = nil
        let (iterations, warmup, threads) = (self.iterations, self.warmup, self.threads)
        let units = computeUnits == Self.everyUnit
            ? ComputeUnitChoice.allCases
            : [ComputeUnitChoice(rawValue: computeUnits) ?? .all]
        Task.detached(priority: .userInitiated) {
            var summaries: [ResultSummary] = []
            var failure: String?
            do {
                let outDir = ModelStore.documents.appendingPathComponent("results", isDirectory: true)
                let stem = model.deletingPathExtension().lastPathComponent
                let stamp = Int(Date().timeIntervalSince1970)
                switch engine {
                case .executorch:
                    var s = ExecuTorchBenchmark.Settings()
                    s.iterations = iterations
                    s.warmup = warmup
                    s.threads = threads
                    let json = try ExecuTorchBenchmark.run(model: model, settings: s)
                    let url = outDir.appendingPathComponent("\(stem)-\(stamp).json")
                    try ModelStore.write(json, to: url)
                    var summary = try ResultSummary.parse(json)
                    summary.savedTo = url
                    summary.model = model
                    summaries.append(summary)
                case .coreml:
                    var s = CoreMLBenchmark.Settings()
                    s.iterations = iterations
                    s.warmup = warmup
                    for unit in units {
                        let json = try await CoreMLBenchmark.run(model: model, units: unit, settings: s)
                        let url = outDir.appendingPathComponent("\(stem).\(unit.rawValue)-\(stamp).json")
                        try ModelStore.write(json, to: url)
                        var summary = try ResultSummary.parse(json)
                        summary.savedTo = url
                        summary.model = model
                        summaries.append(summary)
                    }
                }
            } catch {
                failure = error.localizedDescription
            }
            let done = summaries
            let message = failure
            await MainActor.run {
                // One list never mixes traced and untraced figures: earlier results of the
                // other kind are dropped from the screen (their files stay in Documents/results).
                let kept = self.results.filter { old in done.allSatisfy { $0.traced == old.traced } }
                let cleared = kept.count < self.results.count
                self.results = done + kept
                self.error = message ?? (cleared
                    ? "earlier results of the other timing (traced / untraced) were cleared from the list" : nil)
                self.running = false
            }
        }
    }
}
