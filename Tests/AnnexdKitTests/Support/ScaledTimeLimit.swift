import Foundation
import Testing

/// `.timeLimit(minutes:)`: a suite's time limit, four times as long under a sanitizer
/// (scripts/test-sanitizers sets ANNEXD_TESTS_SANITIZER). AddressSanitizer and ThreadSanitizer
/// run the same code several times slower, and a suite's limit also runs while it waits for
/// the blocking suites ahead of it (TranscriptReplayServerTests passed its 5 minutes so).
extension Trait where Self == TimeLimitTrait {
    static func timeLimit(minutes: Int) -> Self {
        .timeLimit(.minutes(ProcessInfo.processInfo.environment["ANNEXD_TESTS_SANITIZER"] == nil ? minutes : 4 * minutes))
    }
}
