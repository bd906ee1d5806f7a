// Objective-C face of the shared C++ benchmark core (native/mfbench) for Swift.
// MFBenchBridge.mm is the only file that includes mfbench/bench.h; no C++ or
// ExecuTorch type appears here, so Swift imports this header through the
// bridging header.
#import <Foundation/Foundation.h>

NS_ASSUME_NONNULL_BEGIN

/// Error domain of failed runs; the localized description is the core's message.
FOUNDATION_EXPORT NSString *const MFBenchErrorDomain;

typedef NS_ENUM(NSInteger, MFBenchErrorCode) {
  /// mfbench::Error: missing or corrupt model, bad setting, failed run, unwritable file.
  MFBenchErrorCodeBenchmark = 1,
  /// Any other C++ exception.
  MFBenchErrorCodeUnexpected = 2,
};

@interface MFBenchBridge : NSObject

/// Whether the core was compiled with ExecuTorch's event tracer (per-operator
/// times and ETDump). NO with the release Swift PM frameworks.
@property(class, nonatomic, readonly) BOOL hasEventTracer;

/// The ExecuTorch version the app was built against ("" if unknown).
@property(class, nonatomic, readonly) NSString *executorchVersion;

/// Runs `warmup` + `iterations` inferences of the program's `forward` and
/// returns the mobileformer-latency/1 JSON document (docs/latency-format.md).
/// Blocks the calling thread for the whole run: call it off the main thread.
/// `threads` 0 keeps the runtime's default; `etdumpPath` needs hasEventTracer.
+ (nullable NSString *)runBenchmarkWithModelPath:(NSString *)modelPath
                                      iterations:(NSInteger)iterations
                                          warmup:(NSInteger)warmup
                                         threads:(NSInteger)threads
                                      etdumpPath:(nullable NSString *)etdumpPath
                                           label:(nullable NSString *)label
                                      deviceName:(nullable NSString *)deviceName
                                           error:(NSError **)error
    NS_SWIFT_NAME(runBenchmark(modelPath:iterations:warmup:threads:etdumpPath:label:deviceName:));

/// Writes `text` (UTF-8) to `path` atomically (temporary file, fsync, rename)
/// with the core's mfbench::write_file_atomic.
+ (BOOL)writeText:(NSString *)text toPath:(NSString *)path error:(NSError **)error
    NS_SWIFT_NAME(writeAtomically(_:toPath:));

@end

NS_ASSUME_NONNULL_END
