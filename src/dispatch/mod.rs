//! Invite dispatch: the dispatcher loop that claims queued invitations
//! under a lease, renders them, sends them through a provider in batches
//! and records each outcome.

pub mod compose;
pub mod dispatcher;
pub mod events;
pub mod link;
pub mod pace;
pub mod provider;
pub mod providers;
pub mod settle;
pub mod status;
pub mod template;
pub mod token;

pub use dispatcher::Dispatcher;
pub use provider::SharedContent;
pub use status::{DispatchState, DispatchStatus};
