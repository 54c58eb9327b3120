//! Compensation written once: a use case that runs several commands, each
//! atomic on its own (a claim, a place in a slot, a stored blob), registers
//! the undo of each step as it succeeds; if a later step fails, [`Saga::fail`]
//! runs the undos in reverse order and returns the step's error. An undo is a
//! future that has not run yet (futures do nothing until awaited), dropped
//! unrun when the use case succeeds.

use std::future::Future;
use std::pin::Pin;

use crate::app::error::AppError;

type Undo<'a> = Pin<Box<dyn Future<Output = Result<(), AppError>> + Send + 'a>>;

/// The undos of the steps done so far (see the module docs).
#[derive(Default)]
#[must_use = "a saga's undos run only through `fail`"]
pub struct Saga<'a> {
    undo: Vec<(&'static str, Undo<'a>)>,
}

impl<'a> Saga<'a> {
    pub fn new() -> Self {
        Saga { undo: Vec::new() }
    }

    /// Registers how to undo the step `name` that has just succeeded.
    pub fn done(&mut self, name: &'static str, undo: impl Future<Output = Result<(), AppError>> + Send + 'a) {
        self.undo.push((name, Box::pin(undo)));
    }

    /// A later step failed with `error`: undoes every step done, newest
    /// first, and returns `error`. An undo that fails is logged and the
    /// others still run; the caller's answer is the step's error.
    pub async fn fail<T>(self, error: AppError) -> Result<T, AppError> {
        for (name, undo) in self.undo.into_iter().rev() {
            if let Err(e) = undo.await {
                tracing::error!(step = name, error = %e, "could not undo a step after a later one failed");
            }
        }
        Err(error)
    }

    /// Every step succeeded: nothing to undo.
    pub fn commit(self) {}
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn a_failure_undoes_the_steps_done_newest_first_and_answers_its_error() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut saga = Saga::new();
        for step in ["claim", "place"] {
            let log = log.clone();
            saga.done(step, async move {
                log.lock().unwrap().push(step);
                if step == "place" {
                    return Err(crate::app::refusal::Refusal::UndoFailed.into());
                }
                Ok(())
            });
        }
        assert!(log.lock().unwrap().is_empty(), "nothing undone before a failure");
        let out: Result<(), AppError> = saga.fail(AppError::NotFound("slot")).await;
        assert!(matches!(out, Err(AppError::NotFound("slot"))));
        assert_eq!(
            *log.lock().unwrap(),
            vec!["place", "claim"],
            "every undo runs, newest first"
        );
    }

    #[tokio::test]
    async fn a_committed_saga_undoes_nothing() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut saga = Saga::new();
        let l = log.clone();
        saga.done("claim", async move {
            l.lock().unwrap().push("claim");
            Ok(())
        });
        saga.commit();
        tokio::task::yield_now().await;
        assert!(log.lock().unwrap().is_empty());
    }
}
