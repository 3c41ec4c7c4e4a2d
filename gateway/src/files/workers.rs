//! The image workers: `IMAGE_WORKERS` threads of their own, each at the
//! lowest CPU priority (nice 19), that strip, decode and thumbnail images.
//!
//! Decoding a 20-megapixel photo takes a core for a few hundred
//! milliseconds. On the async runtime's blocking pool at normal priority,
//! two such decodes on a 2-core machine held both cores, and messages in
//! flight waited behind them (the bench's fan-out at 30k deliveries/s went
//! from p99 18 ms to 324 ms while 50 uploads streamed). On threads at
//! nice 19 the scheduler gives the delivery path the CPU whenever it wants
//! it, and images take what is left: thumbnails arrive later under load,
//! messages do not.
//!
//! An upload first takes a worker ([`ImageWorkers::take`]): at most
//! [`QUEUE_PER_WORKER`] uploads per worker may wait, beyond that 503
//! `busy`. Only once it holds its worker does it read its image into
//! memory and hand it over ([`Worker::run`]), so a gateway holds at most
//! one image per worker however many wait. The job queue between the two
//! holds at most one job per worker: each job carries its worker's permit,
//! so it can never be full.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use image::ImageFormat;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::images::{BadImage, Processed, process};

/// Uploads that may wait for a worker, per worker. Waiting holds no image
/// in memory (its bytes are in the store), only the upload's request.
pub(crate) const QUEUE_PER_WORKER: usize = 32;

/// The nice value of the worker threads: the lowest priority there is.
const WORKER_NICE: i32 = 19;

type Job = Box<dyn FnOnce() + Send>;

/// The pool: permits for the workers, the uploads waiting for one, and
/// the queue to the threads.
#[derive(Debug)]
pub(crate) struct ImageWorkers {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// Dropped with the pool; the threads then end.
    jobs: SyncSender<Job>,
}

/// Every worker is taken and too many uploads wait already, or the workers
/// are gone: 503.
#[derive(Debug)]
pub(crate) struct Busy;

impl ImageWorkers {
    /// Starts `workers` threads (at least one).
    pub(crate) fn start(workers: usize) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let (jobs, queue) = sync_channel::<Job>(workers);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..workers {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new().name(format!("image-worker-{n}")).spawn(move || work(&queue))?;
        }
        Ok(ImageWorkers {
            permits: Arc::new(Semaphore::new(workers)),
            waiting: AtomicUsize::new(0),
            max_waiting: workers * QUEUE_PER_WORKER,
            jobs,
        })
    }

    /// Waits for a free worker; `Err(Busy)` at once when too many uploads
    /// wait already. Read the image only once this answers.
    pub(crate) async fn take(&self) -> Result<Worker, Busy> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        let permit = Arc::clone(&self.permits).acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.map_err(|_| Busy)?;
        Ok(Worker { permit, jobs: self.jobs.clone() })
    }
}

/// One worker thread: lowers its own priority, then runs jobs until the
/// pool is dropped.
fn work(queue: &Mutex<Receiver<Job>>) {
    let me = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(me), WORKER_NICE) {
        tracing::warn!(%error, "an image worker keeps normal CPU priority: could not lower it");
    }
    loop {
        // The lock is held only while waiting for the next job.
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// A worker taken for one image: held from before its bytes are read until
/// its thumbnail is made.
#[derive(Debug)]
pub(crate) struct Worker {
    permit: OwnedSemaphorePermit,
    jobs: SyncSender<Job>,
}

impl Worker {
    /// Strips, decodes and thumbnails the image on a worker thread;
    /// `Err(Busy)` only if the workers are gone (the gateway is stopping).
    pub(crate) async fn run(
        self,
        bytes: Bytes,
        format: ImageFormat,
        max_pixels: u64,
    ) -> Result<Result<Processed, BadImage>, Busy> {
        let Worker { permit, jobs } = self;
        let (done, processed) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit = permit;
            // A decoder that panics on a hostile file refuses that file;
            // the thread lives on.
            let result = catch_unwind(AssertUnwindSafe(|| process(bytes, format, max_pixels)))
                .unwrap_or_else(|_| Err(BadImage::Undecodable("the decoder failed on it".to_owned())));
            let _ = done.send(result);
        });
        match jobs.try_send(job) {
            Ok(()) => {}
            // Full cannot happen (one job per permit, one slot per permit).
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return Err(Busy),
        }
        processed.await.map_err(|_| Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Bytes {
        let mut out = Vec::new();
        let img = image::RgbImage::from_pixel(width, height, image::Rgb([9, 99, 199]));
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png)
            .expect("png");
        Bytes::from(out)
    }

    #[tokio::test]
    async fn images_are_worked_on_threads_at_the_lowest_priority_and_a_full_pool_says_busy() {
        let workers = ImageWorkers::start(1).expect("start");
        let worker = workers.take().await.expect("a free worker");
        let processed = worker.run(png(800, 200), ImageFormat::Png, 40_000_000).await.expect("ran").expect("an image");
        assert_eq!((processed.thumb_width, processed.thumb_height), (400, 100));

        // The worker thread's nice value, read from outside it.
        let task_dir = std::fs::read_dir("/proc/self/task").expect("tasks");
        let nice: Vec<i64> = task_dir
            .filter_map(|task| {
                let path = task.ok()?.path();
                let comm = std::fs::read_to_string(path.join("comm")).ok()?;
                if !comm.starts_with("image-worker") {
                    return None;
                }
                // Field 19 of stat is the nice value; fields after the
                // parenthesised name are space-separated.
                let stat = std::fs::read_to_string(path.join("stat")).ok()?;
                let after_name = &stat[stat.rfind(')')? + 2..];
                after_name.split(' ').nth(16)?.parse().ok()
            })
            .collect();
        assert!(!nice.is_empty(), "no image-worker thread found");
        assert!(nice.iter().all(|&n| n == i64::from(WORKER_NICE)), "nice values {nice:?}");

        // One worker taken and QUEUE_PER_WORKER waiting: the next is busy.
        let workers = Arc::new(workers);
        let held = workers.take().await.expect("the worker");
        let mut waiting = Vec::new();
        for _ in 0..QUEUE_PER_WORKER {
            let workers = Arc::clone(&workers);
            waiting.push(tokio::spawn(async move { workers.take().await.map(drop) }));
        }
        while workers.waiting.load(Ordering::Acquire) < QUEUE_PER_WORKER {
            tokio::task::yield_now().await;
        }
        assert!(workers.take().await.is_err(), "one more than the queue holds is busy");
        drop(held);
        for waiter in waiting {
            waiter.await.expect("joined").expect("each waiting upload gets the worker in turn");
        }
    }

    #[tokio::test]
    async fn a_broken_image_is_refused_and_the_worker_lives_on() {
        let workers = ImageWorkers::start(1).expect("start");
        let worker = workers.take().await.expect("worker");
        let refused = worker.run(Bytes::from_static(b"\x89PNG\r\n\x1a\nnot really"), ImageFormat::Png, 1000).await;
        assert!(matches!(refused, Ok(Err(BadImage::Undecodable(_)))), "{refused:?}");
        let worker = workers.take().await.expect("worker again");
        assert!(worker.run(png(10, 10), ImageFormat::Png, 1000).await.expect("ran").is_ok());
    }
}
