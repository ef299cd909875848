//! Integration tests of the `allot` binary (one test binary, as DEVELOPERS.md asks).

mod mcf;
