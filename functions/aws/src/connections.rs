//! @connections notifier (to be written).
