// What stock rp2040js 1.4.1 lacks in the USB, UART and SPI peripherals for MicroPython to
// run on them: device-mode SOF interrupts, a timed UART TX FIFO, SPI frames that take time.
// Each install* function is called once per boot, on that boot's fresh chip.

import fs from 'node:fs';

// Device-mode SOF (1 kHz): the stock controller only makes SOFs in host mode. TinyUSB and
// MicroPython use them (deferred flush of output written before the host connected, the
// RP2040-E15 bulk-IN workaround). isConnected(): the host has configured the device.
export function installUsbSof(mcu, isConnected) {
  const usb = mcu.usbCtrl;
  const INTR_DEV_SOF = 1 << 17, SOF_RD = 0x48;
  const usbRead = usb.readUint32.bind(usb);
  usb.readUint32 = (offset) => {
    if (offset === SOF_RD && !usb.hostMode && (usb.intRaw & INTR_DEV_SOF)) {
      usb.intRaw &= ~INTR_DEV_SOF;   // reading SOF_RD clears DEV_SOF
      usb.checkInterrupts();
    }
    return usbRead(offset);
  };
  const sofAlarm = mcu.clock.createAlarm(() => {
    if (isConnected() && !usb.hostMode) {
      usb.sofFrameNumber = (usb.sofFrameNumber + 1) & 0x7ff;
      usb.intRaw |= INTR_DEV_SOF;
      usb.checkInterrupts();
    }
    sofAlarm.schedule(1e6);
  });
  sofAlarm.schedule(1e6);
}

// UART TX model: a 32-entry (or 1 with FIFOs off) TX FIFO drained at the programmed baud
// rate; UARTFR TXFF/TXFE/BUSY reflect it; the TX interrupt is raised when the FIFO level
// drops to the trigger level (PL011: on the transition, not while the level holds). Stock
// rp2040js sends bytes instantly and re-asserts TXINTR on every clear (interrupt storm:
// creating a machine.UART hung MicroPython).
// uartLogFd: null or a file the sent bytes are appended to; loopback[n]: UART n's TX -> its RX.
export function installUartTx(mcu, uartLogFd, loopback) {
  const UARTTXINTR = 1 << 5, UARTFR_TXFF = 1 << 5, UARTFR_TXFE = 1 << 7, UARTFR_BUSY = 1 << 3;
  const UARTIFLS = 0x34;
  mcu.uart.forEach((u, n) => {
    const fifo = [];          // bytes waiting in the TX FIFO
    let shifting = false;     // a byte is in the transmit shift register
    let ifls = 0x12;
    u.checkInterrupts = function () {
      this.rp2040.setInterrupt(this.irq, !!(this.interruptStatus & this.interruptMask));
    };
    const cap = () => (u.fifosEnabled ? 32 : 1);
    const rxFlags = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(u), 'flags').get;
    Object.defineProperty(u, 'flags', { get() {
      const f = rxFlags.call(u) & ~(UARTFR_TXFE | UARTFR_TXFF | UARTFR_BUSY);
      return f | (fifo.length === 0 ? UARTFR_TXFE : 0) | (fifo.length >= cap() ? UARTFR_TXFF : 0) |
        (shifting || fifo.length ? UARTFR_BUSY : 0);
    } });
    const frameNs = () => {
      const lcr = u.lineCtrlRegister;
      const bits = 1 + u.wordLength + (lcr & 2 ? 1 : 0) + (lcr & 8 ? 2 : 1);
      const baud = u.baudDivider ? u.baudRate : 115200;
      return Math.max(1, Math.round((bits * 1e9) / baud));
    };
    // TXIFLSEL: FIFO <= 1/8, 1/4, 1/2, 3/4, 7/8 full; FIFOs off: empty.
    const txLevel = () => (u.fifosEnabled ? [4, 8, 16, 24, 28][(ifls & 7)] ?? 16 : 0);
    let current = 0;
    const startNext = () => {
      current = fifo.shift();
      shifting = true;
      if (fifo.length === txLevel()) { u.interruptStatus |= UARTTXINTR; u.checkInterrupts(); }
      shiftDone.schedule(frameNs());
    };
    const shiftDone = mcu.clock.createAlarm(() => {
      shifting = false;
      if (uartLogFd !== null) fs.writeSync(uartLogFd, Buffer.from([current]));
      if (loopback[n]) u.feedByte(current);
      if (fifo.length) startNext();
    });
    const uRead = u.readUint32.bind(u), uWrite = u.writeUint32.bind(u);
    u.readUint32 = (offset) => (offset === UARTIFLS ? ifls : uRead(offset));
    u.writeUint32 = (offset, value) => {
      if (offset === UARTIFLS) { ifls = value & 0x3f; return; }
      if (offset === 0 /* UARTDR */) {
        if (!u.enabled || !u.txEnabled) return;
        if (fifo.length >= cap()) return;                        // overflow: byte lost
        fifo.push(value & 0xff);
        if (fifo.length > txLevel()) { u.interruptStatus &= ~UARTTXINTR; u.checkInterrupts(); }
        if (!shifting) startNext();
        return;
      }
      uWrite(offset, value);
    };
  });
}

// SPI: a frame takes dataBits/baudrate of emulated time (stock completes it instantly, so
// with MicroPython's DMA transfers (len > ~32) the TX DMA overruns the 8-entry RX FIFO, bytes
// are lost and the RX DMA never finishes: the firmware hangs). MISO reads 0 (nothing attached).
export function installSpiTiming(mcu) {
  for (const spi of mcu.spi) {
    const done = mcu.clock.createAlarm(() => spi.completeTransmit(0));
    spi.onTransmit = () => {
      const f = spi.clockFrequency || 1e6;
      done.schedule(Math.max(1, Math.round((spi.dataBits * 1e9) / f)));
    };
  }
}
