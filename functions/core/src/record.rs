//! One record of a batch, as an event source (Lambda's Kafka event source mapping, or the
//! local gateway's emulation of it) delivers it to fan-out and to the archive.

#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub value: Vec<u8>,
}

impl Record {
    /// Where the record sits in the log, which names a chat record ([`crate::envelope::Stamp`]).
    pub fn position(&self) -> crate::model::LogPosition {
        crate::model::LogPosition {
            partition: self.partition,
            offset: self.offset,
        }
    }
}
