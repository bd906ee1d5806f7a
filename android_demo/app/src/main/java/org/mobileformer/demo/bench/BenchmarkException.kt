package org.mobileformer.demo.bench

/**
 * A benchmark that could not run, with a message for the user: a missing or
 * corrupt model, a bad setting, a failed forward pass, an unwritable output.
 * The JNI bridge throws it for every `mfbench::Error` (keep the name: the C++
 * looks the class up as org/mobileformer/demo/bench/BenchmarkException).
 */
class BenchmarkException(message: String) : RuntimeException(message)
