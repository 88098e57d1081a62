import Foundation
import Shared

/// Runs a hasher on its own thread so that checksumming overlaps with reading
/// the network and writing the disk. Memory stays bounded: at most `depth`
/// buffers of `bufferSize` bytes are in flight; `update` blocks when all are.
final class PipelinedHasher: ContentHasher, @unchecked Sendable {
    /// What the worker thread shares with the caller; it outlives an abandoned hasher.
    private final class Channel: @unchecked Sendable {
        let inner: ContentHasher
        let lock = NSLock()
        let ready = DispatchSemaphore(value: 0)
        let free: DispatchSemaphore
        let drained = DispatchSemaphore(value: 0)
        var queue: [(UnsafeMutableRawBufferPointer, Int)] = []
        var pool: [UnsafeMutableRawBufferPointer] = []
        var closed = false

        init(inner: ContentHasher, bufferSize: Int, depth: Int) {
            self.inner = inner
            // Start at 0 and signal: libdispatch traps when a semaphore is freed
            // below its initial value, which an abandoned transfer would do.
            free = DispatchSemaphore(value: 0)
            for _ in 0..<depth {
                pool.append(.allocate(byteCount: bufferSize, alignment: 64))
                free.signal()
            }
        }

        deinit { for b in pool { b.deallocate() } }

        func work() {
            while true {
                ready.wait()
                lock.lock()
                if queue.isEmpty {
                    let end = closed
                    lock.unlock()
                    if end { drained.signal(); return }
                    continue
                }
                let (buf, used) = queue.removeFirst()
                lock.unlock()
                inner.update(UnsafeRawBufferPointer(rebasing: buf[0..<used]))
                lock.lock()
                pool.append(buf)
                lock.unlock()
                free.signal()
            }
        }

        func close() {
            lock.lock()
            let already = closed
            closed = true
            lock.unlock()
            if !already { ready.signal() }
        }
    }

    private let channel: Channel
    private let bufferSize: Int
    private var pending: (UnsafeMutableRawBufferPointer, Int)?
    private var finalized = false

    init(_ inner: ContentHasher, bufferSize: Int = 1 << 20, depth: Int = 8) {
        self.bufferSize = bufferSize
        channel = Channel(inner: inner, bufferSize: bufferSize, depth: depth)
        let c = channel
        Thread { c.work() }.start()
    }

    deinit {
        if let (buf, _) = pending { channel.lock.lock(); channel.pool.append(buf); channel.lock.unlock() }
        channel.close()
    }

    func update(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            if pending == nil {
                channel.free.wait()
                channel.lock.lock()
                pending = (channel.pool.removeLast(), 0)
                channel.lock.unlock()
            }
            var (buf, used) = pending!
            let n = min(bufferSize - used, bytes.count - offset)
            (buf.baseAddress! + used).copyMemory(from: bytes.baseAddress! + offset, byteCount: n)
            used += n
            offset += n
            pending = (buf, used)
            if used == bufferSize { submit() }
        }
    }

    /// Zero-copy path: a free pipeline buffer to fill (blocks while all are in flight).
    /// Hand it back with `submit(_:count:)`; do not mix with `update` for the same bytes.
    func acquire() -> UnsafeMutableRawBufferPointer {
        submit()
        channel.free.wait()
        channel.lock.lock()
        defer { channel.lock.unlock() }
        return channel.pool.removeLast()
    }

    /// Queues the first `count` bytes of an acquired buffer for hashing.
    func submit(_ buffer: UnsafeMutableRawBufferPointer, count: Int) {
        channel.lock.lock()
        channel.queue.append((buffer, count))
        channel.lock.unlock()
        channel.ready.signal()
    }

    private func submit() {
        guard let p = pending else { return }
        pending = nil
        channel.lock.lock()
        channel.queue.append(p)
        channel.lock.unlock()
        channel.ready.signal()
    }

    func finalizeHex() -> String {
        precondition(!finalized, "finalizeHex called twice")
        finalized = true
        submit()
        channel.close()
        channel.drained.wait()
        return channel.inner.finalizeHex()
    }
}
