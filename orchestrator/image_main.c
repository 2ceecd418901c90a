/* trimo-sbx-image image VERB ...: the image store's verbs with the
 * unpacker, in a program of their own so that libarchive (and libxml2, ICU,
 * libstdc++ behind it) is loaded by imports only, never by every sandbox
 * start.  `trimo-sbx image ...` execs it, and image_resolve() runs it for
 * an unpack. */
#include "orchestrator/cmd_image.h"

int main(int argc, char **argv)
{
	return argc < 2 ? 2 : cmd_image(argc - 1, argv + 1);
}
