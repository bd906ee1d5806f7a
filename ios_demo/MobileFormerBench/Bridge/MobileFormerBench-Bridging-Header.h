// Objective-C headers visible to the app's Swift code.
#import "MFBenchBridge.h"
