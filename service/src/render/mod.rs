//! The API's answers as people read them: text lines, JSON objects and CSV files. Written once
//! here so that every face shows an answer the same way: the CLI prints them, whether it runs in
//! process or against a server.

pub mod allocation;
pub mod appointments;
pub mod audit;
