/*
 * The libsrtp 3 calls mediasoup's worker makes (separate input and output buffers, size_t
 * lengths, srtp_stream_remove), on top of Debian's libsrtp 2, which protects in place with int
 * lengths. Packets are copied to the output buffer when it is another one, and protected there.
 */
#pragma once
#include <srtp2/srtp.h>

#ifdef __cplusplus
#include <climits>
#include <cstring>

/* Status codes that libsrtp 3 adds, numbered after libsrtp 2's last (srtp_err_status_bad_mki = 25). */
inline constexpr srtp_err_status_t srtp_err_status_buffer_small = static_cast<srtp_err_status_t>(28);
inline constexpr srtp_err_status_t srtp_err_status_cryptex_err = static_cast<srtp_err_status_t>(29);

namespace gateway_srtp_compat
{
	using InPlace = srtp_err_status_t (*)(srtp_t, void*, int*);

	/* Protection adds at most SRTP_MAX_TRAILER_LEN bytes: the output must hold that much more. */
	inline srtp_err_status_t Protect(InPlace protect, srtp_t ctx, const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen)
	{
		if (inLen > INT_MAX - SRTP_MAX_TRAILER_LEN || *outLen < inLen + SRTP_MAX_TRAILER_LEN)
			return srtp_err_status_buffer_small;
		if (out != in)
			std::memmove(out, in, inLen);
		int len = static_cast<int>(inLen);
		const srtp_err_status_t status = protect(ctx, out, &len);
		if (status == srtp_err_status_ok)
			*outLen = static_cast<size_t>(len);
		return status;
	}

	inline srtp_err_status_t Unprotect(InPlace unprotect, srtp_t ctx, const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen)
	{
		if (inLen > INT_MAX || *outLen < inLen)
			return srtp_err_status_buffer_small;
		if (out != in)
			std::memmove(out, in, inLen);
		int len = static_cast<int>(inLen);
		const srtp_err_status_t status = unprotect(ctx, out, &len);
		if (status == srtp_err_status_ok)
			*outLen = static_cast<size_t>(len);
		return status;
	}
} // namespace gateway_srtp_compat

/* mediasoup uses no master key index (MKI): any other index is refused. */
inline srtp_err_status_t srtp_protect(srtp_t ctx, const uint8_t* rtp, size_t rtpLen, uint8_t* srtp, size_t* srtpLen, size_t mkiIndex)
{
	if (mkiIndex != 0)
		return srtp_err_status_bad_mki;
	return gateway_srtp_compat::Protect(::srtp_protect, ctx, rtp, rtpLen, srtp, srtpLen);
}

inline srtp_err_status_t srtp_protect_rtcp(srtp_t ctx, const uint8_t* rtcp, size_t rtcpLen, uint8_t* srtcp, size_t* srtcpLen, size_t mkiIndex)
{
	if (mkiIndex != 0)
		return srtp_err_status_bad_mki;
	return gateway_srtp_compat::Protect(::srtp_protect_rtcp, ctx, rtcp, rtcpLen, srtcp, srtcpLen);
}

inline srtp_err_status_t srtp_unprotect(srtp_t ctx, const uint8_t* srtp, size_t srtpLen, uint8_t* rtp, size_t* rtpLen)
{
	return gateway_srtp_compat::Unprotect(::srtp_unprotect, ctx, srtp, srtpLen, rtp, rtpLen);
}

inline srtp_err_status_t srtp_unprotect_rtcp(srtp_t ctx, const uint8_t* srtcp, size_t srtcpLen, uint8_t* rtcp, size_t* rtcpLen)
{
	return gateway_srtp_compat::Unprotect(::srtp_unprotect_rtcp, ctx, srtcp, srtcpLen, rtcp, rtcpLen);
}

inline srtp_err_status_t srtp_stream_remove(srtp_t session, uint32_t ssrc)
{
	return srtp_remove_stream(session, ssrc);
}
#endif
