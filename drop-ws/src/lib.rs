//! Real-time fan-out and web layer for dropkit (in progress).
