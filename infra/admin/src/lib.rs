//! The operator commands that other crates call too: the end-to-end tests run [`lofty`]'s against the local
//! stack's Lofty sandbox. The binary (`main.rs`) holds the rest.

pub mod lofty;
