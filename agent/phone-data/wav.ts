/**
 * A voice recording as the phone keeps it (S1): a small, valid RIFF/WAVE
 * file, 16-bit PCM mono at 8 kHz, holding a soft tone; its duration is read
 * back from the header.
 */

export const SAMPLE_RATE = 8000
const BYTES_PER_SAMPLE = 2

/** `seconds` (rounded to whole samples) of a `hz` tone with a gentle fade in and out. */
export function makeWav(seconds: number, hz: number): Buffer {
  const samples = Math.round(seconds * SAMPLE_RATE)
  const dataBytes = samples * BYTES_PER_SAMPLE
  const wav = Buffer.alloc(44 + dataBytes)
  wav.write('RIFF', 0, 'latin1')
  wav.writeUInt32LE(36 + dataBytes, 4)
  wav.write('WAVE', 8, 'latin1')
  wav.write('fmt ', 12, 'latin1')
  wav.writeUInt32LE(16, 16) // fmt chunk size
  wav.writeUInt16LE(1, 20) // PCM
  wav.writeUInt16LE(1, 22) // mono
  wav.writeUInt32LE(SAMPLE_RATE, 24)
  wav.writeUInt32LE(SAMPLE_RATE * BYTES_PER_SAMPLE, 28) // byte rate
  wav.writeUInt16LE(BYTES_PER_SAMPLE, 32) // block align
  wav.writeUInt16LE(8 * BYTES_PER_SAMPLE, 34) // bits per sample
  wav.write('data', 36, 'latin1')
  wav.writeUInt32LE(dataBytes, 40)
  const fade = SAMPLE_RATE / 20
  for (let i = 0; i < samples; i++) {
    const envelope = Math.min(1, i / fade, (samples - i) / fade)
    wav.writeInt16LE(Math.round(Math.sin((2 * Math.PI * hz * i) / SAMPLE_RATE) * 8000 * envelope), 44 + i * BYTES_PER_SAMPLE)
  }
  return wav
}

/** Seconds of sound in a WAV file (to the millisecond), from its header and data chunk; null when it is not one. */
export function wavDuration(bytes: Buffer): number | null {
  if (bytes.length < 12 || bytes.toString('latin1', 0, 4) !== 'RIFF' || bytes.toString('latin1', 8, 12) !== 'WAVE') return null
  let byteRate = 0
  for (let at = 12; at + 8 <= bytes.length;) {
    const id = bytes.toString('latin1', at, at + 4)
    const size = bytes.readUInt32LE(at + 4)
    if (id === 'fmt ' && size >= 16 && at + 24 <= bytes.length) byteRate = bytes.readUInt32LE(at + 16)
    if (id === 'data') return byteRate > 0 ? Math.round((size / byteRate) * 1000) / 1000 : null
    at += 8 + size + (size % 2)
  }
  return null
}
