package callstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// spool is the Writer's overflow: a file of batches waiting for the sink,
// read in the order they were written. It starts with a header holding
// the offset of the first batch not yet written to the sink, so that a
// gateway restarted after an outage replays what its predecessor
// spooled, and nothing twice (short of a crash between a write to the
// sink and the header's update, which replays that one batch again).
//
//	header: "RLSPOOL1" | read offset (8 bytes, little-endian)
//	frame:  length (4 bytes) | CRC-32C of the batch (4 bytes) | batch
//
// The spool is not safe for concurrent use; the Writer guards it.
type spool struct {
	f      *os.File
	path   string
	read   int64 // offset of the first unread frame
	end    int64 // offset after the last frame
	frames int   // frames between read and end
	// loaded counts the records of the frames found at open.
	loaded int
}

const (
	spoolMagic      = "RLSPOOL1"
	spoolHeaderSize = 16
	frameHeaderSize = 8
	// maxFrameBytes bounds a frame that a damaged file could announce.
	maxFrameBytes = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// openSpool opens or creates the spool at path. A frame cut short at the
// end (a crash while it was written) is cut off; damage anywhere else
// ends the spool there, and the bytes lost past it are reported in lost.
func openSpool(path string) (s *spool, lost int64, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, err
	}
	s = &spool{f: f, path: path}
	if err := s.load(&lost); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("reading spool %s: %w", path, err)
	}
	return s, lost, nil
}

func (s *spool) load(lost *int64) error {
	st, err := s.f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size < spoolHeaderSize {
		// New, or a crash before the header was written.
		return s.reset()
	}
	var h [spoolHeaderSize]byte
	if _, err := s.f.ReadAt(h[:], 0); err != nil {
		return err
	}
	if string(h[:8]) != spoolMagic {
		return errors.New("not a relia spool file")
	}
	s.read = int64(binary.LittleEndian.Uint64(h[8:]))
	if s.read < spoolHeaderSize || s.read > size {
		return fmt.Errorf("read offset %d outside the file's %d bytes", s.read, size)
	}
	// Walk the frames to find the end of the last whole one.
	off := s.read
	var fh [frameHeaderSize]byte
	for off < size {
		if _, err := s.f.ReadAt(fh[:], off); err != nil {
			break
		}
		n := int64(binary.LittleEndian.Uint32(fh[:4]))
		if n > maxFrameBytes || off+frameHeaderSize+n > size {
			break
		}
		buf := make([]byte, n)
		if _, err := s.f.ReadAt(buf, off+frameHeaderSize); err != nil {
			break
		}
		if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(fh[4:]) {
			break
		}
		off += frameHeaderSize + n
		s.frames++
		s.loaded += countFrames(buf)
	}
	*lost = size - off
	s.end = off
	if *lost > 0 {
		if err := s.f.Truncate(off); err != nil {
			return err
		}
	}
	if s.frames == 0 {
		return s.reset()
	}
	return nil
}

// empty reports whether every spooled batch has been read.
func (s *spool) empty() bool { return s.frames == 0 }

// size is the bytes the spool holds: its header and the unread frames.
func (s *spool) size() int64 { return spoolHeaderSize + s.end - s.read }

// append writes a batch at the end.
func (s *spool) append(batch []byte) error {
	buf := make([]byte, frameHeaderSize, frameHeaderSize+len(batch))
	binary.LittleEndian.PutUint32(buf, uint32(len(batch)))
	binary.LittleEndian.PutUint32(buf[4:], crc32.Checksum(batch, castagnoli))
	buf = append(buf, batch...)
	if _, err := s.f.WriteAt(buf, s.end); err != nil {
		// Whatever part was written lies past end and is overwritten by
		// the next append or cut off when the spool is opened again.
		return err
	}
	s.end += int64(len(buf))
	s.frames++
	return nil
}

// peek reads the first unread batch into buf (grown as needed) without
// consuming it.
func (s *spool) peek(buf []byte) ([]byte, error) {
	var fh [frameHeaderSize]byte
	if _, err := s.f.ReadAt(fh[:], s.read); err != nil {
		return buf, err
	}
	n := int(binary.LittleEndian.Uint32(fh[:4]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := s.f.ReadAt(buf, s.read+frameHeaderSize); err != nil {
		return buf, err
	}
	if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(fh[4:]) {
		return buf, fmt.Errorf("%w: spooled batch at offset %d fails its checksum", errCorrupt, s.read)
	}
	return buf, nil
}

// pop consumes the first unread batch, recording the new read offset in
// the header; when the spool is drained the file is emptied.
func (s *spool) pop() error {
	var fh [4]byte
	if _, err := s.f.ReadAt(fh[:], s.read); err != nil {
		return err
	}
	s.read += frameHeaderSize + int64(binary.LittleEndian.Uint32(fh[:]))
	s.frames--
	if s.frames == 0 {
		return s.reset()
	}
	return s.writeHeader()
}

// reset empties the spool.
func (s *spool) reset() error {
	s.read, s.end, s.frames = spoolHeaderSize, spoolHeaderSize, 0
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	return s.writeHeader()
}

func (s *spool) writeHeader() error {
	var h [spoolHeaderSize]byte
	copy(h[:], spoolMagic)
	binary.LittleEndian.PutUint64(h[8:], uint64(s.read))
	_, err := s.f.WriteAt(h[:], 0)
	return err
}

// prepend puts batches before the unread ones, in order, by writing a new
// file and renaming it over the old: the Writer's way of keeping, at
// shutdown, batches older than those already spooled.
func (s *spool) prepend(batches [][]byte) error {
	if len(batches) == 0 {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	n := &spool{f: tmp, path: tmp.Name()}
	if err := n.reset(); err != nil {
		tmp.Close()
		return err
	}
	for _, b := range batches {
		if err := n.append(b); err != nil {
			tmp.Close()
			return err
		}
	}
	if _, err := io.Copy(io.NewOffsetWriter(tmp, n.end), io.NewSectionReader(s.f, s.read, s.end-s.read)); err != nil {
		tmp.Close()
		return err
	}
	n.end += s.end - s.read
	n.frames += s.frames
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		tmp.Close()
		return err
	}
	s.f.Close()
	s.f, s.read, s.end, s.frames = tmp, n.read, n.end, n.frames
	return nil
}

// close syncs and closes the file.
func (s *spool) close() error {
	err := s.f.Sync()
	return errors.Join(err, s.f.Close())
}
