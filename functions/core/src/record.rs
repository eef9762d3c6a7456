//! One record of a batch, as an event source (Lambda's Kafka event source mapping, or the
//! local gateway's emulation of it) delivers it to fan-out and to the archive.

#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub value: Vec<u8>,
}
