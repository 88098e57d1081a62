#ifndef ANNEXD_CSHIMS_H
#define ANNEXD_CSHIMS_H
#include <sys/types.h>
/// Starts asynchronous writeback of a file range (Linux sync_file_range with
/// SYNC_FILE_RANGE_WRITE); a no-op returning 0 elsewhere.
int annexd_start_writeback(int fd, off_t offset, off_t nbytes);
#endif
