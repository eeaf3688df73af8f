use crate::*;

#[test]
fn memory_table_holds() {
    use core::mem::size_of;
    let msg = size_of::<Message>();
    let link16 = size_of::<Link<16>>();
    let link64 = size_of::<Link>();
    println!("Message {msg}, Link<16> {link16}, Link<64> {link64}");
    println!(
        "StreamTransport<()> {}, EthernetTransport<()> {}",
        size_of::<StreamTransport<()>>(),
        size_of::<EthernetTransport<()>>()
    );
    assert_eq!(msg, 1064);
    assert_eq!(link64 - link16, 48 * msg);
    assert_eq!(link16, 3448 + 16 * msg);
    assert_eq!(size_of::<StreamTransport<()>>(), 3120);
    assert_eq!(size_of::<EthernetTransport<()>>(), 1526);
}
