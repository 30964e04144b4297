//! ringmaster examples.
