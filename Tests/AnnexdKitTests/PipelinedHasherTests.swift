import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

@Suite(.timeLimit(minutes: 10)) struct PipelinedHasherTests {
    /// (libsodium's, in one call: byte by byte in a debug build took seconds for 5 MiB.)
    static func random(_ count: Int) -> [UInt8] { Sodium.randomBytes(count) }

    /// Feeds `data` in odd piece sizes, which cross buffer boundaries.
    static func feed(_ data: [UInt8], to hasher: PipelinedHasher) {
        var i = 0
        var step = 1
        while i < data.count {
            let n = min(step, data.count - i)
            data[i..<i + n].withUnsafeBytes { hasher.update($0) }
            i += n
            step = step * 3 % 200_003 + 1
        }
    }

    /// FIPS 180-2's vectors, through the pipeline: "abc" (less than one buffer) and a million
    /// "a" (many buffers, every one of them recycled through the pool).
    @Test func knownAnswers() {
        let abc = PipelinedHasher(HashAlgorithm.sha256.makeHasher(), bufferSize: 65536, depth: 3)
        abc.update(Array("abc".utf8))
        #expect(abc.finalizeHex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")

        let million = PipelinedHasher(HashAlgorithm.sha256.makeHasher(), bufferSize: 4096, depth: 2)
        Self.feed([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000), to: million)
        #expect(million.finalizeHex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")

        let empty = PipelinedHasher(HashAlgorithm.sha256.makeHasher(), bufferSize: 1024, depth: 2)
        #expect(empty.finalizeHex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test(arguments: [HashAlgorithm.sha256, .blake2b512, .sha3_256])
    func sameDigestAsInline(alg: HashAlgorithm) {
        let data = Self.random((5 << 20) + 12345)
        let inline = alg.makeHasher()
        inline.update(data)
        let piped = PipelinedHasher(alg.makeHasher(), bufferSize: 65536, depth: 3)
        Self.feed(data, to: piped)
        #expect(piped.finalizeHex() == inline.finalizeHex())
    }

    /// The zero-copy path ObjectStore.receive takes: buffers filled in place, some only
    /// partly, some not at all (a read that failed).
    @Test func acquiredBuffersHashLikeInline() {
        let data = Self.random(300_000)
        let piped = PipelinedHasher(HashAlgorithm.sha256.makeHasher(), bufferSize: 8192, depth: 2)
        var i = 0
        var round = 0
        while i < data.count {
            let buffer = piped.acquire()
            let n = round % 5 == 4 ? 0 : min(data.count - i, round % 2 == 0 ? buffer.count : 1000 + round)
            data.withUnsafeBytes { source in buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[i..<i + n])) }
            piped.submit(buffer, count: n)
            i += n
            round += 1
        }
        let inline = HashAlgorithm.sha256.makeHasher()
        inline.update(data)
        #expect(piped.finalizeHex() == inline.finalizeHex())
    }

    /// A real hasher that says when it is released.
    final class Watched: ContentHasher {
        let inner = HashAlgorithm.sha256.makeHasher()
        let released: DispatchSemaphore
        init(_ released: DispatchSemaphore) { self.released = released }
        func update(_ bytes: UnsafeRawBufferPointer) { inner.update(bytes) }
        func finalizeHex() -> String { inner.finalizeHex() }
        deinit { released.signal() }
    }

    /// A transfer given up half-way (never finalized): each worker thread finishes what was
    /// queued, ends, and lets go of the hasher.
    @Test func abandonedHashersEndTheirWorkers() {
        let released = DispatchSemaphore(value: 0)
        let count = 50
        for _ in 0..<count {
            let h = PipelinedHasher(Watched(released), bufferSize: 1024, depth: 2)
            h.update([UInt8](repeating: 1, count: 5000))
        }
        var ended = 0
        while ended < count, released.wait(timeout: .now() + 10) == .success { ended += 1 }
        #expect(ended == count, "only \(ended) of \(count) abandoned hashers' workers ended within 10 s")
    }
}
