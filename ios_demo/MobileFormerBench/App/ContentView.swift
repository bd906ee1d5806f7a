import SwiftUI

struct ContentView: View {
    @StateObject private var vm = BenchmarkViewModel()

    var body: some View {
        NavigationStack {
            Form {
                Section {
                    if vm.models.isEmpty {
                        Text("No models in Documents. Copy a .pte, .mlpackage or .mlmodelc in with the "
                             + "Files app (On My iPhone › MobileFormer Bench), Finder, or run_benchmark.sh.")
                            .font(.footnote)
                    } else {
                        Picker("Model", selection: $vm.selected) {
                            ForEach(vm.models, id: \.self) { url in
                                Text(ModelStore.displayName(url)).tag(Optional(url))
                            }
                        }
                    }
                    Button("Refresh", action: vm.refresh)
                } header: {
                    Text("Model")
                }

                Section {
                    Stepper("Iterations: \(vm.iterations)", value: $vm.iterations, in: 1...2000, step: 10)
                    Stepper("Warm-up: \(vm.warmup)", value: $vm.warmup, in: 0...200, step: 5)
                    switch vm.engine {
                    case .executorch:
                        Stepper("Threads: \(vm.threads == 0 ? "default" : String(vm.threads))",
                                value: $vm.threads, in: 0...16)
                        if !ExecuTorchBenchmark.perOperator {
                            Text("ExecuTorch (XNNPACK), whole-model latency only: the Swift PM frameworks have "
                                 + "no event tracer. Per-operator times need ExecuTorch built from source with "
                                 + "EXECUTORCH_BUILD_DEVTOOLS and EXECUTORCH_ENABLE_EVENT_TRACER (README).")
                                .font(.footnote).foregroundStyle(.secondary)
                        }
                    case .coreml:
                        Picker("Compute units", selection: $vm.computeUnits) {
                            Text("every setting").tag(BenchmarkViewModel.everyUnit)
                            ForEach(ComputeUnitChoice.allCases) { unit in
                                Text(unit.rawValue).tag(unit.rawValue)
                            }
                        }
                        Text("Core ML: latency per compute-unit setting; per-operation device and estimated "
                             + "cost from MLComputePlan (iOS 17.4+), no per-operation times.")
                            .font(.footnote).foregroundStyle(.secondary)
                    case .none:
                        EmptyView()
                    }
                } header: {
                    Text("Settings")
                }

                Section {
                    Button {
                        vm.run()
                    } label: {
                        Text(vm.running ? "Running…" : "Run")
                    }
                    .disabled(vm.running || vm.selected == nil)
                    if vm.running {
                        // Still on purpose: an animation takes CPU/GPU time from the timed run.
                        Text("Measuring… the screen stays still until it is done. For figures to report, "
                             + "use the headless run (run_benchmark.sh).")
                            .font(.footnote).foregroundStyle(.secondary)
                    }
                    if let error = vm.error {
                        Text(error).foregroundStyle(.red).font(.footnote)
                    }
                }

                ForEach(vm.results) { result in
                    Section {
                        ResultView(result: result, model: result.model)
                    } header: {
                        Text(result.label)
                    }
                }
            }
            .navigationTitle("MobileFormer Bench")
            .onAppear(perform: vm.refresh)
        }
    }
}
