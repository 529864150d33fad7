package ai

import (
	"bytes"
	"sync"
)

// chunkShape keeps the last stream chunk that scanChunk read in full
// (up to maxShapesLearnt a stream, none with a finish reason or usage),
// so that the chunks after it are read by comparison with it. A provider's
// chunks differ mostly in the text of a few strings: the delta's
// content, and strings relia never reads (an obfuscation pad, a log
// probability's token). A chunk equal to the kept one but for such
// strings, each still a valid JSON string, is valid JSON (the bytes
// around the strings are the kept chunk's, read in the same order, in
// the same state) and reads as the kept one, but for whether its delta
// carries text. The bytes between strings are compared a block at a
// time, and only the strings that differ are checked byte by byte: a
// fifth of a full scan for a typical chunk (BenchmarkStreamChunks). A
// chunk that differs anywhere else (a key, a number, a finish reason,
// usage, the layout) is scanned in full, and may become the kept one.
//
// The scanner's reading stays the one definition: FuzzChunkShape holds
// every chunk read by comparison to what scanChunk reads of it.
type chunkShape struct {
	data  []byte      // the kept chunk, a copy
	spans []shapeSpan // its string values, in order
	piece piece       // scanChunk's reading of it (raw aside)
	// tokensEmpty and tokensIn are what the chunk reads as with its
	// delta's content (its one spanContent) empty and with text in it.
	tokensEmpty, tokensIn bool
	learnt                int // chunks kept so far in this stream
	// spanRoom holds the spans of a typical chunk (a dozen strings)
	// without an allocation of their own.
	spanRoom [16]shapeSpan
	// box holds data while release lends it out (nil then).
	box *[]byte
}

// keptChunks holds the kept-chunk buffers of streams that ended
// (chunkShape.release), for the streams after them.
var keptChunks sync.Pool

// takeKept takes a buffer that an ended stream's shape lent, if there
// is one.
func (sh *chunkShape) takeKept() {
	if b, ok := keptChunks.Get().(*[]byte); ok {
		sh.data, sh.box, *b = (*b)[:0], b, nil
	}
}

// release lends the kept chunk's buffer to the streams after this one,
// once its stream is closed: the shape reads nothing after that.
func (sh *chunkShape) release() {
	if sh.data == nil || cap(sh.data) > 2*maxShapeLen {
		return
	}
	b := sh.box
	if b == nil {
		b = new([]byte)
	}
	*b, sh.data, sh.box = sh.data[:0], nil, nil // no kept chunk: read compares nothing
	keptChunks.Put(b)
}

// shapeSpan is a string value of the kept chunk: data[start] is its
// opening quote, data[end-1] its closing one.
type shapeSpan struct {
	start, end int32
	role       spanRole
}

// spanRole is what scanChunk makes of a string value.
type spanRole uint8

const (
	spanFree    spanRole = iota // checked, never read
	spanRead                    // read: a chunk that differs in it is scanned in full
	spanContent                 // a delta's content: read for whether it is empty
)

// Chunks kept a stream at most, and the longest kept: a stream whose
// chunks keep changing shape is then scanned in full at no extra cost,
// and a long chunk is not held by a waiting stream.
const (
	maxShapesLearnt = 4
	maxShapeLen     = 1 << 10
)

// read reads data by comparison with the kept chunk, reporting false
// when it cannot (data must then be scanned in full).
func (sh *chunkShape) read(data []byte) (piece, bool) {
	kept, spans := sh.data, sh.spans
	if len(kept) == 0 {
		return piece{}, false
	}
	contentEmpty := -1 // -1: as in the kept chunk; else 1 or 0
	i, j := 0, 0
	for _, sp := range spans {
		// The bytes up to the end of the kept string are most often the
		// same; else those up to its opening quote must be, and data's
		// string there must be valid JSON and, when relia reads it, the
		// kept one.
		if n := int(sp.end) - j; i+n <= len(data) && bytes.Equal(data[i:i+n], kept[j:sp.end]) {
			i, j = i+n, int(sp.end)
			continue
		}
		n := int(sp.start) + 1 - j
		if sp.role == spanRead || i+n > len(data) || !bytes.Equal(data[i:i+n], kept[j:sp.start+1]) {
			return piece{}, false
		}
		open := i + n - 1
		end, ok := validString(data, open)
		if !ok {
			return piece{}, false
		}
		if sp.role == spanContent {
			contentEmpty = 0
			if end-open == 2 {
				contentEmpty = 1
			}
		}
		i, j = end, int(sp.end)
	}
	if !bytes.Equal(data[i:], kept[j:]) {
		return piece{}, false
	}
	p := sh.piece
	p.raw = data
	switch contentEmpty {
	case 1:
		p.tokens = sh.tokensEmpty
	case 0:
		p.tokens = sh.tokensIn
	}
	return p, true
}

// learn keeps data, which scanChunk read as p, for the chunks after it,
// where it can serve them.
func (sh *chunkShape) learn(data []byte, p piece) {
	// A chunk with a finish reason or usage ends its stream (or carries
	// counts that change each chunk): none after it reads alike.
	if sh.learnt >= maxShapesLearnt || len(data) > maxShapeLen || p.finish != "" || p.usage != nil {
		return
	}
	sh.learnt++
	if sh.data == nil {
		sh.takeKept()
	}
	if cap(sh.data) <= len(data) { // room for the chunk and a byte more
		sh.data = make([]byte, 0, max(2*len(data), 512))
	}
	if sh.spans == nil {
		sh.spans = sh.spanRoom[:0]
	}
	sh.data, sh.spans = sh.data[:0], sh.spans[:0]
	recordStrings(data, skipSpace(data, 0), 0, spanFree, levelChunk, &sh.spans)
	content := -1 // the index in spans of the delta's content, when it has one
	for i, sp := range sh.spans {
		if sp.role != spanContent {
			continue
		}
		if content >= 0 { // two contents: read as any other read string
			sh.spans[content].role, sh.spans[i].role = spanRead, spanRead
			continue
		}
		content = i
	}
	p.raw = nil
	sh.piece = p
	if content >= 0 {
		// What the chunk reads as with its content's emptiness turned:
		// the delta's other members and the other choices decide that
		// too, and scanChunk is asked rather than retold.
		sp := sh.spans[content]
		empty := sp.end-sp.start == 2
		sh.data = append(sh.data, data[:sp.start+1]...)
		if empty {
			sh.data = append(sh.data, 'x')
		}
		sh.data = append(sh.data, data[sp.end-1:]...)
		turned, err := scanChunk(sh.data)
		if err != nil || !sameReading(turned, p) {
			sh.data, sh.spans = sh.data[:0], sh.spans[:0]
			return
		}
		sh.tokensEmpty, sh.tokensIn = p.tokens, p.tokens
		if empty {
			sh.tokensIn = turned.tokens
		} else {
			sh.tokensEmpty = turned.tokens
		}
	}
	sh.data = append(sh.data[:0], data...)
}

// sameReading reports whether a and b read alike but for their tokens.
func sameReading(a, b piece) bool {
	return a.finish == b.finish && a.usageOnly == b.usageOnly && a.chunk == nil && b.chunk == nil &&
		(a.usage == nil) == (b.usage == nil) && (a.usage == nil || *a.usage == *b.usage)
}

// chunkLevel is where in a chunk recordStrings is, for the roles of the
// strings below it.
type chunkLevel uint8

const (
	levelChunk   chunkLevel = iota // the chunk itself
	levelChoices                   // its choices
	levelChoice                    // one choice
	levelDelta                     // a choice's delta
	levelValue                     // any value below: its strings take the role given
)

// recordStrings appends the string values of the valid JSON value at
// data[at], with the roles scanChunk gives them, to spans, and returns
// the index past the value.
func recordStrings(data []byte, at, depth int, role spanRole, level chunkLevel, spans *[]shapeSpan) int {
	switch data[at] {
	case '"':
		end, _ := validString(data, at)
		*spans = append(*spans, shapeSpan{start: int32(at), end: int32(end), role: role})
		return end
	case '[':
		if level == levelChoices {
			level = levelChoice
		} else {
			level = levelValue
		}
		end, _ := walkArray(data, at, depth+1, func(at int) (int, bool) {
			return recordStrings(data, at, depth+1, role, level, spans), true
		})
		return end
	case '{':
		end, _ := walkObject(data, at, depth+1, func(key []byte, plain bool, at int) (int, bool) {
			r, l := role, levelValue
			switch {
			case level == levelChunk && keyIs(key, plain, "choices"):
				l = levelChoices
			case level == levelChunk && (keyIs(key, plain, "usage") || keyIs(key, plain, "error")):
				r = spanRead
			case level == levelChoice && keyIs(key, plain, "delta"):
				l = levelDelta
			case level == levelChoice && keyIs(key, plain, "finish_reason"):
				r = spanRead
			case level == levelDelta && keyIs(key, plain, "content"):
				r = spanContent
			case level == levelDelta && keyIs(key, plain, "tool_calls"):
				r = spanRead
			}
			return recordStrings(data, at, depth+1, r, l, spans), true
		})
		return end
	}
	end, _ := validValue(data, at, depth)
	return end
}
