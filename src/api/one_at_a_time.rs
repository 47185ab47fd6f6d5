//! One question asked at a time, its answer shared by everyone who asked
//! while it ran: for the endpoints that need no key and ask the database
//! (`/metrics`, `/readyz`), so a flood of them asks one question at a
//! time, not one per request on a thread each.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

/// The answer of one question asked at a time. A caller that arrives while
/// a question runs waits for it to end, then takes the answer of a question
/// asked after it arrived (the next one, or its own): never older than
/// itself.
pub struct OneAtATime<T> {
    /// Questions asked so far.
    asked: AtomicU64,
    /// The last answer, with its question's number.
    last: tokio::sync::Mutex<Option<(u64, T)>>,
}

impl<T> Default for OneAtATime<T> {
    fn default() -> Self {
        OneAtATime {
            asked: AtomicU64::new(0),
            last: tokio::sync::Mutex::new(None),
        }
    }
}

impl<T: Clone> OneAtATime<T> {
    /// The answer of a question asked after this call began: the one
    /// running now's next, shared with every other caller waiting for it,
    /// or `ask`'s own. A failed question is not kept.
    pub async fn get<E, F: Future<Output = Result<T, E>>>(
        &self,
        ask: impl FnOnce() -> F,
    ) -> Result<T, E> {
        let asked_before = self.asked.load(Ordering::Acquire);
        let mut last = self.last.lock().await;
        if let Some((number, answer)) = &*last {
            if *number > asked_before {
                return Ok(answer.clone());
            }
        }
        let number = self.asked.fetch_add(1, Ordering::AcqRel) + 1;
        let answer = ask().await?;
        *last = Some((number, answer.clone()));
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test]
    async fn callers_at_once_share_one_question_and_none_gets_an_answer_older_than_itself() {
        let latest = OneAtATime::<usize>::default();
        let questions = AtomicUsize::new(0);
        let ask = || async {
            let n = questions.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, ()>(n)
        };
        let answers = futures_util::future::join_all((0..50).map(|_| latest.get(ask))).await;
        // The first asks; the 49 that came while it ran share the next one.
        assert_eq!(questions.load(Ordering::SeqCst), 2);
        assert_eq!(answers[0], Ok(1));
        assert!(answers[1..].iter().all(|a| *a == Ok(2)), "{answers:?}");
        // One that comes after both is asked anew.
        assert_eq!(latest.get(ask).await, Ok(3));
        // A failure is not kept.
        assert_eq!(
            latest.get(|| async { Err::<usize, _>("down") }).await,
            Err("down")
        );
        assert_eq!(latest.get(ask).await, Ok(4));
    }
}
