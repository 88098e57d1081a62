import Testing
@testable import AnnexdKit
@testable import Shared

@Suite struct PipelinedHasherTests {
    @Test(arguments: [HashAlgorithm.sha256, .blake2b512, .sha3_256])
    func sameDigestAsInline(alg: HashAlgorithm) {
        var rng = SystemRandomNumberGenerator()
        let data = (0..<(5 << 20) + 12345).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let inline = alg.makeHasher()
        inline.update(data)
        let piped = PipelinedHasher(alg.makeHasher(), bufferSize: 65536, depth: 3)
        // Odd piece sizes cross buffer boundaries.
        var i = 0
        var step = 1
        while i < data.count {
            let n = min(step, data.count - i)
            data[i..<i + n].withUnsafeBytes { piped.update($0) }
            i += n
            step = step * 3 % 200_003 + 1
        }
        #expect(piped.finalizeHex() == inline.finalizeHex())
    }

    @Test func abandonedHasherDoesNotHang() {
        for _ in 0..<50 {
            let h = PipelinedHasher(HashAlgorithm.sha256.makeHasher(), bufferSize: 1024, depth: 2)
            h.update([UInt8](repeating: 1, count: 5000))
        }
    }
}
