package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The AWS event stream encoding (application/vnd.amazon.eventstream),
// which Bedrock's ConverseStream answers in: each message is
//
//	total length (4 bytes) | headers length (4) | CRC-32 of the 8 bytes before (4)
//	headers | payload | CRC-32 of everything before (4)
//
// all big-endian; each header is a name length (1), the name, a value
// type (1) and the value, a string (type 7) being a length (2) and bytes.

// MaxEventStreamMessage bounds one event stream message relia reads.
const MaxEventStreamMessage = 1 << 20

// ErrEventStreamCRC is returned for a message whose checksum is wrong.
var ErrEventStreamCRC = errors.New("event stream: checksum mismatch")

// EventStreamMessage is one decoded event stream message with its string
// headers (":event-type", ":message-type", ":exception-type", ...).
type EventStreamMessage struct {
	Headers map[string]string
	Payload []byte
}

// AppendEventStream appends one message with string headers, given as
// name, value pairs, to dst.
func AppendEventStream(dst []byte, payload []byte, headers ...string) []byte {
	hlen := 0
	for i := 0; i+1 < len(headers); i += 2 {
		hlen += 1 + len(headers[i]) + 1 + 2 + len(headers[i+1])
	}
	total := 12 + hlen + len(payload) + 4
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(total))
	dst = binary.BigEndian.AppendUint32(dst, uint32(hlen))
	dst = binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:start+8]))
	for i := 0; i+1 < len(headers); i += 2 {
		dst = append(dst, byte(len(headers[i])))
		dst = append(dst, headers[i]...)
		dst = append(dst, 7)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(headers[i+1])))
		dst = append(dst, headers[i+1]...)
	}
	dst = append(dst, payload...)
	return binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
}

// EventStreamReader reads event stream messages.
type EventStreamReader struct {
	br  *bufio.Reader
	buf []byte
}

// NewEventStreamReader returns a reader of r.
func NewEventStreamReader(r io.Reader) *EventStreamReader {
	return &EventStreamReader{br: bufio.NewReader(r)}
}

// Buffered returns how many bytes the reader holds unread.
func (r *EventStreamReader) Buffered() int { return r.br.Buffered() }

// Next returns the next message: io.EOF at a clean end,
// io.ErrUnexpectedEOF inside a message. Its payload is valid until the
// next call.
func (r *EventStreamReader) Next() (EventStreamMessage, error) {
	var prelude [12]byte
	if _, err := io.ReadFull(r.br, prelude[:]); err != nil {
		return EventStreamMessage{}, err
	}
	total := binary.BigEndian.Uint32(prelude[0:4])
	hlen := binary.BigEndian.Uint32(prelude[4:8])
	if crc32.ChecksumIEEE(prelude[:8]) != binary.BigEndian.Uint32(prelude[8:12]) {
		return EventStreamMessage{}, ErrEventStreamCRC
	}
	if total < 16 || total > MaxEventStreamMessage || uint64(hlen)+16 > uint64(total) {
		return EventStreamMessage{}, fmt.Errorf("event stream: message of %d bytes with %d bytes of headers", total, hlen)
	}
	need := int(total) - 12
	if cap(r.buf) < need {
		r.buf = make([]byte, need)
	}
	body := r.buf[:need]
	if _, err := io.ReadFull(r.br, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return EventStreamMessage{}, err
	}
	crc := crc32.Update(crc32.ChecksumIEEE(prelude[:]), crc32.IEEETable, body[:need-4])
	if crc != binary.BigEndian.Uint32(body[need-4:]) {
		return EventStreamMessage{}, ErrEventStreamCRC
	}
	headers, err := parseEventHeaders(body[:hlen])
	if err != nil {
		return EventStreamMessage{}, err
	}
	return EventStreamMessage{Headers: headers, Payload: body[hlen : need-4]}, nil
}

// parseEventHeaders reads the headers of a message, keeping string values
// and skipping the other types by their sizes.
func parseEventHeaders(b []byte) (map[string]string, error) {
	h := map[string]string{}
	bad := errors.New("event stream: malformed headers")
	for len(b) > 0 {
		n := int(b[0])
		if len(b) < 1+n+1 {
			return nil, bad
		}
		name := string(b[1 : 1+n])
		typ := b[1+n]
		b = b[2+n:]
		var size int
		switch typ {
		case 0, 1: // true, false
		case 2: // byte
			size = 1
		case 3: // short
			size = 2
		case 4: // int
			size = 4
		case 5, 8: // long, timestamp
			size = 8
		case 9: // uuid
			size = 16
		case 6, 7: // bytes, string
			if len(b) < 2 {
				return nil, bad
			}
			l := int(binary.BigEndian.Uint16(b))
			if len(b) < 2+l {
				return nil, bad
			}
			if typ == 7 {
				h[name] = string(b[2 : 2+l])
			}
			b = b[2+l:]
			continue
		default:
			return nil, bad
		}
		if len(b) < size {
			return nil, bad
		}
		b = b[size:]
	}
	return h, nil
}
