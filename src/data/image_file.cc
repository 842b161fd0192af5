#include "data/image_file.h"

#include <fmt/format.h>
#include <setjmp.h>
#include <stdio.h>

#include <cerrno>
#include <cstring>
#include <memory>

#if !defined(PARETOPIPE_HAVE_JPEG) || !defined(PARETOPIPE_HAVE_PNG)
#error "PARETOPIPE_HAVE_JPEG and PARETOPIPE_HAVE_PNG come from src/CMakeLists.txt"
#endif
#if PARETOPIPE_HAVE_PNG
#include <png.h>
#endif
#if PARETOPIPE_HAVE_JPEG
// jpeglib.h needs FILE and size_t first.
#include <jpeglib.h>
#endif

namespace paretopipe {
namespace {

// A decompression bomb guard: 16384 x 16384.
constexpr uint64_t kMaxPixels = uint64_t{1} << 28;

// The first bytes of every PNG file (PNG specification, 5.2).
constexpr unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

struct FileCloser {
  void operator()(FILE* f) const { fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

#if PARETOPIPE_HAVE_JPEG || PARETOPIPE_HAVE_PNG
// Interleaved RGB rows into planar CHW.
void ToPlanar(const std::vector<uint8_t>& rgb, RgbImage* image) {
  const size_t plane = static_cast<size_t>(image->height) * image->width;
  image->pixels.resize(3 * plane);
  for (size_t i = 0; i < plane; ++i) {
    for (int c = 0; c < 3; ++c) image->pixels[c * plane + i] = rgb[3 * i + c];
  }
}
#endif

#if PARETOPIPE_HAVE_JPEG
// libjpeg reports errors through a callback that must not return: jump back.
struct JpegError {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void OnJpegError(j_common_ptr info) {
  JpegError* e = reinterpret_cast<JpegError*>(info->err);
  (*info->err->format_message)(info, e->message);
  longjmp(e->jump, 1);
}

// Nothing with a destructor lives across the setjmp: the rows go into a
// buffer allocated before it.
Status DecodeJpeg(FILE* f, const std::string& path, RgbImage* image) {
  jpeg_decompress_struct info;
  JpegError error;
  info.err = jpeg_std_error(&error.mgr);
  error.mgr.error_exit = OnJpegError;
  std::vector<uint8_t> rgb;
  if (setjmp(error.jump)) {
    jpeg_destroy_decompress(&info);
    return Status::InvalidArgument(fmt::format("{}: JPEG: {}", path, error.message));
  }
  jpeg_create_decompress(&info);
  jpeg_stdio_src(&info, f);
  jpeg_read_header(&info, TRUE);
  // Pillow's defaults: the accurate integer DCT and fancy upsampling.
  info.out_color_space = JCS_RGB;
  info.dct_method = JDCT_ISLOW;
  info.do_fancy_upsampling = TRUE;
  if (static_cast<uint64_t>(info.image_width) * info.image_height > kMaxPixels) {
    jpeg_destroy_decompress(&info);
    return Status::InvalidArgument(fmt::format("{}: {} x {} pixels is above the limit of 2^28",
                                               path, info.image_width, info.image_height));
  }
  jpeg_start_decompress(&info);
  image->width = static_cast<int>(info.output_width);
  image->height = static_cast<int>(info.output_height);
  rgb.resize(static_cast<size_t>(image->width) * image->height * 3);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = rgb.data() + static_cast<size_t>(info.output_scanline) * image->width * 3;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  ToPlanar(rgb, image);
  return Status::Ok();
}
#else
Status DecodeJpeg(FILE* /*f*/, const std::string& path, RgbImage* /*image*/) {
  return CheckImageFormatBuilt(ImageFormat::kJpeg).WithContext(path);
}
#endif  // PARETOPIPE_HAVE_JPEG

#if PARETOPIPE_HAVE_PNG
void OnPngError(png_structp png, png_const_charp message) {
  std::strncpy(static_cast<char*>(png_get_error_ptr(png)), message, 255);
  png_longjmp(png, 1);
}

void OnPngWarning(png_structp, png_const_charp) {}

Status DecodePng(FILE* f, const std::string& path, RgbImage* image) {
  char message[256] = {0};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, message, OnPngError, OnPngWarning);
  if (png == nullptr) return Status::Internal("png_create_read_struct failed");
  png_infop info = png_create_info_struct(png);
  std::vector<uint8_t> rgb;
  std::vector<png_bytep> rows;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return Status::InvalidArgument(fmt::format("{}: PNG: {}", path, message));
  }
  png_init_io(png, f);
  png_read_info(png, info);
  const png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
  if (static_cast<uint64_t>(width) * height > kMaxPixels) {
    png_destroy_read_struct(&png, &info, nullptr);
    return Status::InvalidArgument(
        fmt::format("{}: {} x {} pixels is above the limit of 2^28", path, width, height));
  }
  // As Pillow's convert("RGB"): palette and grey to RGB, 16-bit samples to
  // their high byte, alpha (and a tRNS chunk) dropped.
  const int type = png_get_color_type(png, info);
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) {
    if (png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_gray_to_rgb(png);
  }
  if (png_get_bit_depth(png, info) == 16) png_set_strip_16(png);
  if (type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8) {
    png_destroy_read_struct(&png, &info, nullptr);
    return Status::InvalidArgument(fmt::format("{}: PNG: unsupported layout", path));
  }
  image->width = static_cast<int>(width);
  image->height = static_cast<int>(height);
  rgb.resize(static_cast<size_t>(width) * height * 3);
  rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = rgb.data() + static_cast<size_t>(y) * width * 3;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  ToPlanar(rgb, image);
  return Status::Ok();
}
#else
Status DecodePng(FILE* /*f*/, const std::string& path, RgbImage* /*image*/) {
  return CheckImageFormatBuilt(ImageFormat::kPng).WithContext(path);
}
#endif  // PARETOPIPE_HAVE_PNG

}  // namespace

Status CheckImageFormatBuilt(ImageFormat format) {
  const bool jpeg = format == ImageFormat::kJpeg;
  if (jpeg ? PARETOPIPE_HAVE_JPEG : PARETOPIPE_HAVE_PNG) return Status::Ok();
  return Status::Unavailable(fmt::format(
      "this build has no {} support: CMake found no {} when it was configured "
      "(install {}, then reconfigure)",
      jpeg ? "JPEG" : "PNG", jpeg ? "libjpeg" : "libpng", jpeg ? "libjpeg-dev" : "libpng-dev"));
}

Result<RgbImage> DecodeImageFile(const std::string& path) {
  File f(fopen(path.c_str(), "rb"));
  if (!f) {
    if (errno == ENOENT) return Status::NotFound(fmt::format("{}: no such file", path));
    return Status::InvalidArgument(fmt::format("{}: {}", path, strerror(errno)));
  }
  unsigned char magic[8] = {0};
  const size_t got = fread(magic, 1, sizeof(magic), f.get());
  rewind(f.get());
  RgbImage image;
  if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
    PP_RETURN_IF_ERROR(DecodeJpeg(f.get(), path, &image));
  } else if (got == sizeof(kPngSignature) && std::memcmp(magic, kPngSignature, got) == 0) {
    PP_RETURN_IF_ERROR(DecodePng(f.get(), path, &image));
  } else {
    return Status::InvalidArgument(fmt::format("{}: neither a JPEG nor a PNG file", path));
  }
  return image;
}

}  // namespace paretopipe
