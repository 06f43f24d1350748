import { RTCPeerConnection, RTCRtpCodecParameters, useNACK, usePLI, useSdesMid } from 'werift';

/**
 * A werift peer connection of the tests' own clients: ICE on `localAddress` alone (loopback, or a
 * test host's link to a namespace), one bundle, H.264 (constrained baseline, packetization mode 1)
 * and Opus on the given payload types.
 */
export function loopbackPeer(
  localAddress: string,
  payloadTypes: { video: number; audio: number },
  videoCodec: 'H264' | 'AV1' = 'H264',
): RTCPeerConnection {
  return new RTCPeerConnection({
    iceServers: [],
    bundlePolicy: 'max-bundle',
    iceUseIpv4: false,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: [localAddress],
    iceInterfaceAddresses: { udp4: localAddress },
    codecs: {
      video: [
        new RTCRtpCodecParameters({
          mimeType: `video/${videoCodec}`,
          clockRate: 90000,
          payloadType: payloadTypes.video,
          rtcpFeedback: [useNACK(), usePLI()],
          ...(videoCodec === 'H264'
            ? { parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f' }
            : {}),
        }),
      ],
      audio: [
        new RTCRtpCodecParameters({
          mimeType: 'audio/opus',
          clockRate: 48000,
          channels: 2,
          payloadType: payloadTypes.audio,
        }),
      ],
    },
    headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
  });
}
