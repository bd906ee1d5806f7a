// JNI bridge between org.mobileformer.demo.bench.NativeBench (Kotlin) and the
// shared benchmark core native/mfbench. It includes mfbench/bench.h only: no
// ExecuTorch types cross this file.
//
//   NativeBench.runBenchmark(modelPath, iterations, warmup, threads, etdumpPath,
//                            label, deviceName): String   (the JSON document)
//   NativeBench.hasEventTracer(): Boolean
//   NativeBench.executorchVersion(): String
//
// mfbench::Error becomes org.mobileformer.demo.bench.BenchmarkException with the
// core's message; anything else a java.lang.RuntimeException.
#include <jni.h>

#include <exception>
#include <mutex>
#include <string>

#include "mfbench/bench.h"

#ifndef MFBENCH_APP_VERSION
#define MFBENCH_APP_VERSION "0.1.0"
#endif
#ifndef MFBENCH_EXECUTORCH_VERSION
#define MFBENCH_EXECUTORCH_VERSION ""
#endif

namespace {

constexpr const char* kBenchmarkException = "org/mobileformer/demo/bench/BenchmarkException";

// Java strings as real UTF-8 (GetStringUTFChars gives "modified" UTF-8, which
// differs for characters outside the BMP, e.g. in file names).
std::string utf8(JNIEnv* env, jstring s) {
  if (s == nullptr) return {};
  jclass string_class = env->GetObjectClass(s);
  jmethodID get_bytes = env->GetMethodID(string_class, "getBytes", "(Ljava/lang/String;)[B");
  jstring charset = env->NewStringUTF("UTF-8");
  auto bytes = static_cast<jbyteArray>(env->CallObjectMethod(s, get_bytes, charset));
  env->DeleteLocalRef(charset);
  env->DeleteLocalRef(string_class);
  if (env->ExceptionCheck() || bytes == nullptr) return {};
  const jsize n = env->GetArrayLength(bytes);
  std::string out(static_cast<size_t>(n), '\0');
  env->GetByteArrayRegion(bytes, 0, n, reinterpret_cast<jbyte*>(&out[0]));
  env->DeleteLocalRef(bytes);
  return out;
}

jstring to_jstring(JNIEnv* env, const std::string& s) {
  jbyteArray bytes = env->NewByteArray(static_cast<jsize>(s.size()));
  if (bytes == nullptr) return nullptr;  // OutOfMemoryError pending
  env->SetByteArrayRegion(bytes, 0, static_cast<jsize>(s.size()),
                          reinterpret_cast<const jbyte*>(s.data()));
  jclass string_class = env->FindClass("java/lang/String");
  jmethodID ctor = env->GetMethodID(string_class, "<init>", "([BLjava/lang/String;)V");
  jstring charset = env->NewStringUTF("UTF-8");
  auto out = static_cast<jstring>(env->NewObject(string_class, ctor, bytes, charset));
  env->DeleteLocalRef(charset);
  env->DeleteLocalRef(bytes);
  env->DeleteLocalRef(string_class);
  return out;
}

void throw_java(JNIEnv* env, const char* class_name, const std::string& message) {
  if (env->ExceptionCheck()) return;  // keep the first pending exception
  jclass cls = env->FindClass(class_name);
  if (cls == nullptr) {
    env->ExceptionClear();
    cls = env->FindClass("java/lang/RuntimeException");
    if (cls == nullptr) return;
  }
  env->ThrowNew(cls, message.c_str());
  env->DeleteLocalRef(cls);
}

// mfbench::run is not reentrant (the XNNPACK thread pool is process-wide).
std::mutex g_run_mutex;

}  // namespace

extern "C" JNIEXPORT jstring JNICALL
Java_org_mobileformer_demo_bench_NativeBench_runBenchmark(
    JNIEnv* env, jclass /*clazz*/, jstring model_path, jint iterations, jint warmup,
    jint threads, jstring etdump_path, jstring label, jstring device_name) {
  mfbench::Options options;
  options.model_path = utf8(env, model_path);
  options.iterations = static_cast<int>(iterations);
  options.warmup = static_cast<int>(warmup);
  options.threads = static_cast<int>(threads);
  options.etdump_path = utf8(env, etdump_path);
  options.label = utf8(env, label);
  options.device_name = utf8(env, device_name);
  options.device_kind = "android";
  options.tool = std::string("android_demo ") + MFBENCH_APP_VERSION + " (mfbench core)";
  options.operators = mfbench::has_event_tracer();
  if (env->ExceptionCheck()) return nullptr;

  try {
    std::lock_guard<std::mutex> lock(g_run_mutex);
    const mfbench::Result result = mfbench::run(options);
    return to_jstring(env, mfbench::to_json(result));
  } catch (const mfbench::Error& e) {
    throw_java(env, kBenchmarkException, e.what());
  } catch (const std::exception& e) {
    throw_java(env, "java/lang/RuntimeException", std::string("mfbench: unexpected error: ") + e.what());
  } catch (...) {
    throw_java(env, "java/lang/RuntimeException", "mfbench: unexpected error");
  }
  return nullptr;
}

extern "C" JNIEXPORT jboolean JNICALL
Java_org_mobileformer_demo_bench_NativeBench_hasEventTracer(JNIEnv* /*env*/, jclass /*clazz*/) {
  return mfbench::has_event_tracer() ? JNI_TRUE : JNI_FALSE;
}

extern "C" JNIEXPORT jstring JNICALL
Java_org_mobileformer_demo_bench_NativeBench_executorchVersion(JNIEnv* env, jclass /*clazz*/) {
  return to_jstring(env, MFBENCH_EXECUTORCH_VERSION);
}
