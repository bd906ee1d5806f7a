// Objective-C++ bridge to native/mfbench: builds mfbench::Options, runs the
// core, and turns mfbench::Error into an NSError. Compiled with ARC.
#import "MFBenchBridge.h"

#include <exception>
#include <mutex>
#include <string>

#include "mfbench/bench.h"

#ifndef MFBENCH_EXECUTORCH_VERSION
#define MFBENCH_EXECUTORCH_VERSION ""
#endif

NSString *const MFBenchErrorDomain = @"org.mobileformer.MFBench";

namespace {

std::string ToStd(NSString *_Nullable s) {
  if (s == nil) return std::string();
  const char *utf8 = s.UTF8String;
  return utf8 != nullptr ? std::string(utf8) : std::string();
}

NSString *ToNS(const std::string &s) {
  NSString *out = [[NSString alloc] initWithBytes:s.data() length:s.size() encoding:NSUTF8StringEncoding];
  return out != nil ? out : @"";
}

NSError *MakeError(MFBenchErrorCode code, const std::string &message) {
  return [NSError errorWithDomain:MFBenchErrorDomain
                             code:code
                         userInfo:@{NSLocalizedDescriptionKey : ToNS(message)}];
}

// mfbench::run is not reentrant (the XNNPACK thread pool is process-wide).
std::mutex g_run_mutex;

NSString *AppVersion() {
  id version = [NSBundle.mainBundle objectForInfoDictionaryKey:@"CFBundleShortVersionString"];
  return [version isKindOfClass:[NSString class]] ? (NSString *)version : @"0.1.0";
}

}  // namespace

@implementation MFBenchBridge

+ (BOOL)hasEventTracer {
  return mfbench::has_event_tracer() ? YES : NO;
}

+ (NSString *)executorchVersion {
  return ToNS(MFBENCH_EXECUTORCH_VERSION);
}

+ (nullable NSString *)runBenchmarkWithModelPath:(NSString *)modelPath
                                      iterations:(NSInteger)iterations
                                          warmup:(NSInteger)warmup
                                         threads:(NSInteger)threads
                                      etdumpPath:(nullable NSString *)etdumpPath
                                           label:(nullable NSString *)label
                                      deviceName:(nullable NSString *)deviceName
                                           error:(NSError **)error {
  mfbench::Options options;
  options.model_path = ToStd(modelPath);
  options.iterations = static_cast<int>(iterations);
  options.warmup = static_cast<int>(warmup);
  options.threads = static_cast<int>(threads);
  options.etdump_path = ToStd(etdumpPath);
  options.label = ToStd(label);
  options.device_name = ToStd(deviceName);
  options.device_kind = "ios";
  options.tool = "ios_demo " + ToStd(AppVersion()) + " (mfbench core)";
  options.operators = mfbench::has_event_tracer();
  try {
    std::lock_guard<std::mutex> lock(g_run_mutex);
    const mfbench::Result result = mfbench::run(options);
    return ToNS(mfbench::to_json(result));
  } catch (const mfbench::Error &e) {
    if (error != nullptr) *error = MakeError(MFBenchErrorCodeBenchmark, e.what());
  } catch (const std::exception &e) {
    if (error != nullptr) {
      *error = MakeError(MFBenchErrorCodeUnexpected, std::string("unexpected error: ") + e.what());
    }
  } catch (...) {
    if (error != nullptr) *error = MakeError(MFBenchErrorCodeUnexpected, "unexpected error");
  }
  return nil;
}

+ (BOOL)writeText:(NSString *)text toPath:(NSString *)path error:(NSError **)error {
  try {
    mfbench::write_file_atomic(ToStd(path), ToStd(text));
    return YES;
  } catch (const std::exception &e) {
    if (error != nullptr) *error = MakeError(MFBenchErrorCodeBenchmark, e.what());
    return NO;
  }
}

@end
