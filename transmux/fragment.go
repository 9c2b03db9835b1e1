package transmux

import (
	"encoding/binary"
	"time"
)

// sample is one complete access unit waiting to be written: its duration is
// known because the next frame of its track has arrived.
type sample struct {
	dts  int64
	dur  uint32
	cto  int32
	key  bool
	data []byte
	time time.Time
}

// Sample flags (ISO/IEC 14496-12 8.8.3.1): sample_depends_on=2 marks a sync
// sample; sample_depends_on=1 plus sample_is_non_sync_sample marks the rest.
const (
	flagsSync    = 0x02000000
	flagsNonSync = 0x01010000
)

// Box sizes of the moof we write (ISO/IEC 14496-12 8.8): one traf with tfhd,
// tfdt (version 1) and one trun.
const (
	sizeMfhd       = 16
	sizeTfdt       = 20
	sizeMdatHdr    = 8
	tfhdBaseIsMoof = 0x020000
	tfhdDefFlags   = 0x000020
)

// fragmentHeader builds the moof and mdat header for ss with mp4 byte layout
// written by hand: mp4ff's Fragment allocates a box tree per call, while this
// allocates exactly the returned slice. Video writes per-sample flags and
// composition offsets (trun version 1, signed); audio writes durations and
// sizes with every sample a sync sample by tfhd default.
func fragmentHeader(seq uint32, bmdt uint64, ss []sample, video bool) []byte {
	perSample := 8
	trunFlags := uint32(0x000301) // data-offset, duration, size
	tfhdFlags := uint32(tfhdBaseIsMoof | tfhdDefFlags)
	sizeTfhd := 20
	if video {
		perSample = 16
		trunFlags |= 0x000C00 // flags, composition offset
		tfhdFlags = tfhdBaseIsMoof
		sizeTfhd = 16
	}
	sizeTrun := 20 + perSample*len(ss)
	sizeTraf := 8 + sizeTfhd + sizeTfdt + sizeTrun
	sizeMoof := 8 + sizeMfhd + sizeTraf
	var mdatLen int
	for i := range ss {
		mdatLen += len(ss[i].data)
	}
	b := make([]byte, 0, sizeMoof+sizeMdatHdr)
	be := binary.BigEndian

	b = be.AppendUint32(b, uint32(sizeMoof))
	b = append(b, "moof"...)
	b = be.AppendUint32(b, sizeMfhd)
	b = append(b, "mfhd"...)
	b = be.AppendUint32(b, 0)
	b = be.AppendUint32(b, seq)

	b = be.AppendUint32(b, uint32(sizeTraf))
	b = append(b, "traf"...)
	b = be.AppendUint32(b, uint32(sizeTfhd))
	b = append(b, "tfhd"...)
	b = be.AppendUint32(b, tfhdFlags)
	b = be.AppendUint32(b, 1) // track_ID: one track per CMAF file
	if !video {
		b = be.AppendUint32(b, flagsSync)
	}
	b = be.AppendUint32(b, sizeTfdt)
	b = append(b, "tfdt"...)
	b = be.AppendUint32(b, 1<<24)
	b = be.AppendUint64(b, bmdt)

	b = be.AppendUint32(b, uint32(sizeTrun))
	b = append(b, "trun"...)
	if video {
		b = be.AppendUint32(b, 1<<24|trunFlags)
	} else {
		b = be.AppendUint32(b, trunFlags)
	}
	b = be.AppendUint32(b, uint32(len(ss)))
	b = be.AppendUint32(b, uint32(sizeMoof+sizeMdatHdr)) // data_offset from moof start
	for i := range ss {
		s := &ss[i]
		b = be.AppendUint32(b, s.dur)
		b = be.AppendUint32(b, uint32(len(s.data)))
		if video {
			if s.key {
				b = be.AppendUint32(b, flagsSync)
			} else {
				b = be.AppendUint32(b, flagsNonSync)
			}
			b = be.AppendUint32(b, uint32(s.cto))
		}
	}
	b = be.AppendUint32(b, uint32(sizeMdatHdr+mdatLen))
	b = append(b, "mdat"...)
	return b
}
