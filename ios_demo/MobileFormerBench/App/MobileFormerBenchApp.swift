import SwiftUI

@main
struct MobileFormerBenchApp: App {
    /// Set when launched with --headless (run_benchmark.sh); the UI otherwise.
    private let headless: Result<HeadlessOptions, Error>? = {
        do {
            return try HeadlessOptions.parse(ProcessInfo.processInfo.arguments).map { .success($0) }
        } catch {
            return .failure(error)
        }
    }()

    var body: some Scene {
        WindowGroup {
            switch headless {
            case .none:
                ContentView()
            case .success(let options):
                HeadlessView(options: options)
            case .failure(let error):
                let arguments = ProcessInfo.processInfo.arguments
                HeadlessView(parseError: error.localizedDescription,
                             statusDirectory: HeadlessOptions.resultDirectory(forUnparsable: arguments))
            }
        }
    }
}

/// Shown during a headless run; exits the app when the run has written status.json.
struct HeadlessView: View {
    var options: HeadlessOptions?
    var parseError: String?
    var statusDirectory: URL?

    init(options: HeadlessOptions) { self.options = options }
    init(parseError: String, statusDirectory: URL) {
        self.parseError = parseError
        self.statusDirectory = statusDirectory
    }

    var body: some View {
        VStack(spacing: 12) {
            // No spinner: an animation would take CPU/GPU time from the run it measures.
            Text("Headless benchmark running…")
            Text(options?.model ?? parseError ?? "").font(.footnote).foregroundStyle(.secondary)
        }
        .padding()
        .task {
            UIApplication.shared.isIdleTimerDisabled = true
            if let options {
                await HeadlessRunner.run(options)
            } else if let statusDirectory {
                HeadlessRunner.writeStatus(dir: statusDirectory, files: [], error: parseError ?? "bad arguments")
            }
            // A benchmark tool started from the command line: leave, so the next
            // `devicectl device process launch` starts a fresh process.
            exit(0)
        }
    }
}
