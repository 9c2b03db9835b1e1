// aac_harness.c: the Opus→AAC path of stages/codec (FFmpeg Opus decode → 1024-sample regroup →
// encode) in a C loop, to count instructions per codec function with callgrind and to compare
// encoders (docs/BENCHMARKS.md, "Towards 0.008 of a core per stream"). Not part of the build.
//
// Input: Opus packets, each prefixed by its length (uint32 little-endian), e.g. from a fixture's
// Ogg pages. Build statically against Debian's libavcodec.a so callgrind sees FFmpeg's symbols:
//
//   L=/usr/lib/x86_64-linux-gnu
//   LIBS=$(ldd $L/libavcodec.so.59 $L/libswresample.so.4 $L/libavutil.so.57 | awk '/=>/{print $3}' |
//          grep -v 'libavutil\|libswresample\|libavcodec' | sort -u)
//   gcc -O2 -g -no-pie -o hs aac_harness.c $L/libavcodec.a $L/libswresample.a $L/libavutil.a \
//       -lvo-aacenc $LIBS -lm -lpthread
//   ./hs PKTS CH PASSES ff|vo|none RATE BITRATE OUT.aac|- [ffmpeg aac option=value ...]
//   RAWOPUS=24000 ./hs ...   decodes with libopus itself at that rate instead of FFmpeg's decoder
//
// Valgrind 3.19 cannot run rdtscp, which libhwy's initialiser uses (loaded through libjxl); run it
// with LD_PRELOAD of a stub that defines hwy::platform::TimerResolution(), InvariantTicksPerSecond()
// and Now() (double-returning C++ functions); Go test binaries also need
// GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off.
//   RATE: encoder rate; Opus decoded by FFmpeg at 48k, resampled by swr when RATE != 48000 (unless DEC=libopus)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libavcodec/avcodec.h>
#include <libavutil/opt.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
#include <vo-aacenc/voAAC.h>
#include <vo-aacenc/cmnMemory.h>
typedef struct OpusDecoder OpusDecoder;
OpusDecoder *opus_decoder_create(int fs, int channels, int *error);
int opus_decode_float(OpusDecoder *st, const unsigned char *data, int len, float *pcm, int frame_size, int decode_fec);
static unsigned char *pk[2000]; static int pl[2000], np;
static void adts(FILE *f, const unsigned char *d, int n, int ch, int rate) {
  int fi = rate == 48000 ? 3 : rate == 44100 ? 4 : rate == 32000 ? 5 : rate == 24000 ? 6 : rate == 22050 ? 7 : rate == 16000 ? 8 : 3;
  int l = n + 7; unsigned char h[7] = {0xFF, 0xF1, (1 << 6) | (fi << 2) | (ch >> 2), ((ch & 3) << 6) | (l >> 11), (l >> 3) & 0xFF, ((l & 7) << 5) | 0x1F, 0xFC};
  fwrite(h, 1, 7, f); fwrite(d, 1, n, f);
}
int main(int argc, char **argv) {
  FILE *in = fopen(argv[1], "rb"); int ch = atoi(argv[2]), passes = atoi(argv[3]); const char *enc = argv[4];
  int rate = atoi(argv[5]), br = atoi(argv[6]); FILE *out = strcmp(argv[7], "-") ? fopen(argv[7], "wb") : NULL;
  unsigned int len; while (fread(&len, 4, 1, in) == 1) { pk[np] = malloc(len + 64); memset(pk[np], 0, len + 64); fread(pk[np], 1, len, in); pl[np++] = len; }
  OpusDecoder *od = NULL; float ibuf[5760 * 2], dp0[5760], dp1[5760], *dplane[2] = {dp0, dp1};
  if (getenv("RAWOPUS")) { int err; od = opus_decoder_create(atoi(getenv("RAWOPUS")), ch, &err); if (!od) return 1; }
  const char *decname = getenv("DEC") ? getenv("DEC") : "opus";
  AVChannelLayout lay; av_channel_layout_default(&lay, ch);
  const AVCodec *dc = avcodec_find_decoder_by_name(decname);
  AVCodecContext *d = avcodec_alloc_context3(dc);
  int decrate = getenv("DECRATE") ? atoi(getenv("DECRATE")) : 48000;
  d->sample_rate = decrate; av_channel_layout_copy(&d->ch_layout, &lay); d->request_sample_fmt = AV_SAMPLE_FMT_FLTP;
  if (avcodec_open2(d, dc, NULL) < 0) { fprintf(stderr, "dec open\n"); return 1; }
  fprintf(stderr, "decoder %s rate %d fmt %s ch %d\n", decname, d->sample_rate, av_get_sample_fmt_name(d->sample_fmt), d->ch_layout.nb_channels);
  AVCodecContext *e = NULL; VO_AUDIO_CODECAPI api; VO_HANDLE vh = NULL; int fs = 1024;
  if (!strcmp(enc, "ff")) {
    const AVCodec *ec = avcodec_find_encoder_by_name("aac"); e = avcodec_alloc_context3(ec);
    e->sample_fmt = AV_SAMPLE_FMT_FLTP; e->sample_rate = rate; av_channel_layout_copy(&e->ch_layout, &lay); e->bit_rate = br;
    e->profile = FF_PROFILE_AAC_LOW; e->time_base = (AVRational){1, rate}; e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *o = NULL; for (int i = 8; i < argc; i++) { char k[64]; strcpy(k, argv[i]); char *v = strchr(k, '='); *v++ = 0; av_dict_set(&o, k, v, 0); }
    if (avcodec_open2(e, ec, &o) < 0) { fprintf(stderr, "enc open\n"); return 1; }
    AVDictionaryEntry *t = av_dict_get(o, "", NULL, AV_DICT_IGNORE_SUFFIX); if (t) { fprintf(stderr, "unknown option %s\n", t->key); return 1; }
    fs = e->frame_size; fprintf(stderr, "ff aac cutoff %d\n", e->cutoff);
  } else if (!strcmp(enc, "vo")) {
    voGetAACEncAPI(&api); static VO_MEM_OPERATOR mo = {cmnMemAlloc, cmnMemFree, cmnMemSet, cmnMemCopy, cmnMemCheck};
    VO_CODEC_INIT_USERDATA ud = {VO_IMF_USERMEMOPERATOR, &mo}; if (api.Init(&vh, VO_AUDIO_CodingAAC, &ud)) return 1;
    AACENC_PARAM p = {rate, br, ch, 0}; if (api.SetParam(vh, VO_PID_AAC_ENCPARAM, &p)) { fprintf(stderr, "vo param\n"); return 1; }
  }
  SwrContext *swr = NULL;
  if (rate != (od ? atoi(getenv("RAWOPUS")) : d->sample_rate) && strcmp(enc, "none")) {
    swr_alloc_set_opts2(&swr, &lay, AV_SAMPLE_FMT_FLTP, rate, &lay, AV_SAMPLE_FMT_FLTP, d->sample_rate, 0, NULL);
    if (swr_init(swr) < 0) return 1;
  }
  AVPacket *p = av_packet_alloc(), *op = av_packet_alloc(); AVFrame *f = av_frame_alloc(), *ef = av_frame_alloc();
  ef->nb_samples = fs; ef->format = AV_SAMPLE_FMT_FLTP; av_channel_layout_copy(&ef->ch_layout, &lay); ef->sample_rate = rate; av_frame_get_buffer(ef, 0);
  float *fifo[2]; fifo[0] = malloc(4 * 8192); fifo[1] = malloc(4 * 8192); int n = 0; int64_t pts = 0; short *s16 = malloc(2 * 2 * fs); unsigned char vobuf[8192];
  float *rs[2]; rs[0] = malloc(4 * 4096); rs[1] = malloc(4 * 4096);
  long bytes = 0, frames = 0;
  struct timespec a, b; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
  for (int ps = 0; ps < passes; ps++) for (int i = 0; i < np; i++) {
    p->data = pk[i]; p->size = pl[i]; p->pts = p->dts = (int64_t)(ps * np + i) * 960;
    int got = 0;
    if (od) {
      int k = opus_decode_float(od, pk[i], pl[i], ibuf, 5760, 0);
      if (k <= 0) continue;
      if (!strcmp(enc, "none")) continue;
      for (int j = 0; j < k; j++) for (int c = 0; c < ch; c++) dplane[c][j] = ibuf[j * ch + c];
      float **src = dplane;
      for (int c = 0; c < ch; c++) memcpy(fifo[c] + n, src[c], 4 * k);
      n += k; got = 1; goto encode;
    }
    if (avcodec_send_packet(d, p) < 0) continue;
    while (avcodec_receive_frame(d, f) == 0) {
      if (!strcmp(enc, "none")) { av_frame_unref(f); continue; }
      float **src = (float **)f->extended_data; int k = f->nb_samples;
      if (swr) { k = swr_convert(swr, (uint8_t **)rs, 4096, (const uint8_t **)f->extended_data, f->nb_samples); src = rs; }
      for (int c = 0; c < ch; c++) memcpy(fifo[c] + n, src[c], 4 * k);
      n += k; av_frame_unref(f);
    encode:
      while (n >= fs) {
        if (e) {
          av_frame_make_writable(ef);
          for (int c = 0; c < ch; c++) memcpy(ef->extended_data[c], fifo[c], 4 * fs);
          ef->pts = pts; pts += fs; avcodec_send_frame(e, ef);
          while (avcodec_receive_packet(e, op) == 0) { bytes += op->size; frames++; if (out) adts(out, op->data, op->size, ch, rate); av_packet_unref(op); }
        } else {
          for (int j = 0; j < fs; j++) for (int c = 0; c < ch; c++) { float v = fifo[c][j] * 32768.f; s16[j * ch + c] = v > 32767 ? 32767 : v < -32768 ? -32768 : (short)v; }
          VO_CODECBUFFER ib = {s16, 2 * ch * fs, 0}, ob = {vobuf, sizeof vobuf, 0}; VO_AUDIO_OUTPUTINFO oi = {0};
          api.SetInputData(vh, &ib);
          while (1) { ob.Buffer = vobuf; ob.Length = sizeof vobuf; if (api.GetOutputData(vh, &ob, &oi) != VO_ERR_NONE) break; bytes += ob.Length; frames++; if (out) adts(out, vobuf, ob.Length, ch, rate); }
        }
        for (int c = 0; c < ch; c++) memmove(fifo[c], fifo[c] + fs, 4 * (n - fs));
        n -= fs;
      }
      if (got) break;
    }
  }
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
  double t = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9, secs = passes * np * 0.02;
  fprintf(stderr, "%s ch=%d rate=%d br=%d: cpu %.3f s for %.0f s => %.4f cores; %ld frames, %.1f kb/s\n", enc, ch, rate, br, t, secs, t / secs, frames, bytes * 8 / secs / 1000);
  if (out) fclose(out);
  return 0;
}
