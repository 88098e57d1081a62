;;; annexd.el --- Get, drop and copy git-annex files through annexd  -*- lexical-binding: t; -*-

;; Author: annexd contributors
;; Version: 0.1
;; Package-Requires: ((emacs "28.1"))
;; Keywords: files, vc, comm

;; This file is not part of GNU Emacs.

;;; Commentary:

;; annexd serves git-annex repositories as Tor onion services and moves
;; their content between peers.  This package talks to it over its unix
;; socket (JSON-RPC 2.0, one JSON text per line, docs/API.md) with
;; Emacs' own network processes and JSON support: nothing else needed.
;;
;; Commands, on the marked files in dired (or the file at point), or on
;; the current buffer's file:
;;
;;   M-x annexd-get        get the content from peers (transfer.start)
;;   M-x annexd-drop       drop the content here (content.drop; annexd
;;                         keeps numcopies, as `git annex drop' does)
;;   M-x annexd-copy       copy the content to a peer (a tor-annex remote)
;;   M-x annexd-transfers  the transfers, updated live from annexd's events
;;                         (c cancel, p pause, r resume, R retry, g refresh)
;;   M-x annexd-peers      a repository's remotes and peers and their state
;;
;; The socket: `annexd-socket', else $ANNEXD_SOCKET, else
;; $XDG_RUNTIME_DIR/annexd/rpc.sock, else /tmp/annexd-UID/rpc.sock (as
;; annex-cli finds it).
;;
;; For Lisp: `annexd-call' (synchronous, with a timeout) and
;; `annexd-call-async' call any method; `annexd-events-start' follows the
;; event stream, resuming by id after a dropped connection, and runs
;; `annexd-event-functions' for each event and `annexd-resync-functions'
;; when events may have been missed (annexd restarted, or fell behind).

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'tabulated-list)

(declare-function dired-get-marked-files "dired")

(defgroup annexd nil
  "Drive annexd, the git-annex daemon serving repositories over Tor."
  :group 'files
  :prefix "annexd-")

(defcustom annexd-socket nil
  "annexd's RPC socket; nil: $ANNEXD_SOCKET or the default place."
  :type '(choice (const :tag "As annex-cli finds it" nil) file))

(defcustom annexd-timeout 60
  "Seconds a synchronous call waits for annexd's answer."
  :type 'number)

(defcustom annexd-reconnect-max-delay 5
  "Most seconds between two tries to reach annexd for events."
  :type 'number)

(define-error 'annexd-error "annexd")

;;;; Socket, errors

(defun annexd-socket-path ()
  "The socket annexd listens on, found as annex-cli finds it."
  (let ((env (getenv "ANNEXD_SOCKET"))
        (runtime (or (getenv "XDG_RUNTIME_DIR") "")))
    (cond (annexd-socket annexd-socket)
          ((and env (not (string-empty-p env))) env)
          ((string-prefix-p "/" runtime) (concat runtime "/annexd/rpc.sock"))
          (t (format "/tmp/annexd-%d/rpc.sock" (user-uid))))))

(defun annexd--signal (message reason &optional details method)
  "Signal `annexd-error' with MESSAGE, REASON, DETAILS and METHOD."
  (signal 'annexd-error (list message reason details method)))

(defun annexd--error-data (error method)
  "The `annexd-error' data for a JSON-RPC ERROR object answering METHOD."
  (let ((data (alist-get 'data error)))
    (list (or (alist-get 'message error) "unknown error")
          (or (alist-get 'reason data) "error")
          (assq-delete-all 'reason (copy-alist data))
          method)))

(defun annexd-error-reason (err)
  "The stable reason word (a string) of ERR, an `annexd-error'."
  (nth 2 err))

(defun annexd--report (data)
  "Show the `annexd-error' DATA as a message."
  (message "annexd: %s" (car data)))

(defmacro annexd--with-user-errors (&rest body)
  "Run BODY; an `annexd-error' becomes a `user-error' in its own words."
  (declare (indent 0) (debug t))
  `(condition-case err
       (progn ,@body)
     (annexd-error (user-error "annexd: %s" (cadr err)))))

;;;; Connections: JSON-RPC 2.0, one JSON text per line

(cl-defstruct (annexd--conn (:constructor annexd--conn-make))
  process (partial "") (next-id 0) (pending (make-hash-table))
  on-notification on-close closed)

(defun annexd--not-running (path err)
  "Signal that nothing answers on PATH (ERR: the connect's error)."
  (annexd--signal
   (format "annexd is not running (%s at %s). Start it with `annexd', or \
`systemctl --user start annexd'; set `annexd-socket' or ANNEXD_SOCKET if it \
listens elsewhere"
           (if (file-exists-p path) "nothing listening" "no socket") path)
   "daemon_not_running" `((socket . ,path) (error . ,(error-message-string err)))))

(defun annexd--connect (on-notification &optional on-close)
  "A new connection to annexd.
ON-NOTIFICATION is called with each notification (an alist);
ON-CLOSE with no arguments once the connection ends."
  (let* ((path (annexd-socket-path))
         (conn (annexd--conn-make :on-notification on-notification
                                  :on-close on-close)))
    (setf (annexd--conn-process conn)
          (condition-case err
              (make-network-process
               :name "annexd" :family 'local :service path
               :coding 'utf-8-unix :noquery t
               :filter (lambda (_proc text) (annexd--receive conn text))
               :sentinel (lambda (proc _event)
                           (unless (process-live-p proc) (annexd--closed conn))))
            (file-error (annexd--not-running path err))))
    conn))

(defun annexd--receive (conn text)
  "Handle TEXT read on CONN: each complete line is one message."
  (let ((data (concat (annexd--conn-partial conn) text))
        (start 0) nl)
    (while (setq nl (string-search "\n" data start))
      (let ((line (substring data start nl)))
        (setq start (1+ nl))
        (with-demoted-errors "annexd: %S" (annexd--dispatch conn line))))
    (setf (annexd--conn-partial conn) (substring data start))))

(defun annexd--parse (text)
  "TEXT parsed as JSON: objects as alists, arrays as lists, null and false nil."
  (json-parse-string text :object-type 'alist :array-type 'list
                     :null-object nil :false-object nil))

(defun annexd--dispatch (conn line)
  "Give the message LINE to its pending call on CONN, or to its notifications."
  (let* ((msg (condition-case nil (annexd--parse line)
                (json-parse-error
                 (message "annexd sent something that is not JSON: %s"
                          (truncate-string-to-width line 200))
                 nil)))
         (id (alist-get 'id msg)))
    (cond ((and (alist-get 'method msg) (not id))
           (when-let ((f (annexd--conn-on-notification conn))) (funcall f msg)))
          (id
           (let ((callback (gethash id (annexd--conn-pending conn))))
             (remhash id (annexd--conn-pending conn))
             (when callback
               (funcall callback (alist-get 'result msg) (alist-get 'error msg))))))))

(defun annexd--closed (conn)
  "CONN ended: its pending calls fail with connection_lost."
  (unless (annexd--conn-closed conn)
    (setf (annexd--conn-closed conn) t)
    (let (callbacks)
      (maphash (lambda (_id cb) (push cb callbacks)) (annexd--conn-pending conn))
      (clrhash (annexd--conn-pending conn))
      (dolist (cb callbacks)
        (funcall cb nil '((message . "annexd closed the connection before answering")
                          (data (reason . "connection_lost"))))))
    (when-let ((f (annexd--conn-on-close conn))) (funcall f))))

(defun annexd--send (conn method params callback)
  "Send METHOD with PARAMS (an alist, or nil) on CONN.
CALLBACK is called with the result and the error object (one is nil)."
  (let ((id (cl-incf (annexd--conn-next-id conn)))
        (request `((jsonrpc . "2.0") (method . ,method))))
    (setq request (append request `((id . ,id)) (and params `((params . ,params)))))
    (puthash id callback (annexd--conn-pending conn))
    (condition-case err
        (process-send-string (annexd--conn-process conn)
                             (concat (json-serialize request) "\n"))
      (error (remhash id (annexd--conn-pending conn))
             (annexd--signal (format "cannot write to annexd: %s" (error-message-string err))
                             "connection_lost" nil method)))
    id))

(defvar annexd--calls nil "The connection calls go on.")

(defun annexd--calls ()
  "The connection for calls, opened when there is none."
  (unless (and annexd--calls (process-live-p (annexd--conn-process annexd--calls)))
    (setq annexd--calls (annexd--connect #'ignore)))
  annexd--calls)

(defun annexd-call-async (method params callback &optional errback)
  "Call METHOD with PARAMS (an alist); CALLBACK gets the result.
ERRBACK gets the `annexd-error' data (message reason details method) of
an error; without one, the error is shown as a message."
  (annexd--send (annexd--calls) method params
                (lambda (result error)
                  (if error
                      (funcall (or errback #'annexd--report) (annexd--error-data error method))
                    (funcall callback result)))))

(defun annexd-call (method &optional params timeout)
  "Call METHOD with PARAMS (an alist) and wait for its result.
Waits at most TIMEOUT seconds (default `annexd-timeout'); signals
`annexd-error' for an error answer, a lost connection or no answer."
  (let* ((conn (annexd--calls))
         (deadline (+ (float-time) (or timeout annexd-timeout)))
         done result error id)
    (setq id (annexd--send conn method params
                           (lambda (r e) (setq done t result r error e))))
    (while (and (not done) (< (float-time) deadline))
      (accept-process-output (annexd--conn-process conn) 0.05))
    (cond (error (signal 'annexd-error (annexd--error-data error method)))
          (done result)
          (t (remhash id (annexd--conn-pending conn))
             (annexd--signal (format "annexd did not answer %s within %s s" method
                                     (or timeout annexd-timeout))
                             "timeout" nil method)))))

;;;; Events: one connection subscribed, resuming by id

(defvar annexd-event-functions nil
  "Functions called with each event of annexd (an alist: id, boot, type...).")

(defvar annexd-resync-functions nil
  "Functions called with no arguments when events may have been missed.
annexd restarted (a new boot) or dropped events it no longer keeps:
re-read the state you show.")

(cl-defstruct (annexd--stream (:constructor annexd--stream-make))
  conn boot last-id asked delivered (delay 0.1) timer stopped)

(defvar annexd--stream nil "The event stream, once started.")

(defun annexd-events-start ()
  "Follow annexd's events (once: a no-op when already following)."
  (unless annexd--stream
    (setq annexd--stream (annexd--stream-make))
    (annexd--subscribe annexd--stream)))

(defun annexd-events-stop ()
  "Stop following annexd's events."
  (when-let ((st annexd--stream))
    (setq annexd--stream nil)
    (setf (annexd--stream-stopped st) t)
    (when (annexd--stream-timer st) (cancel-timer (annexd--stream-timer st)))
    (when (annexd--stream-conn st)
      (delete-process (annexd--conn-process (annexd--stream-conn st))))))

(defun annexd--subscribe (st)
  "Connect ST and subscribe from its last id; on failure, try again later."
  (setf (annexd--stream-timer st) nil)
  (condition-case nil
      (let ((conn (annexd--connect (lambda (msg) (annexd--stream-receive st msg))
                                   (lambda () (annexd--stream-lost st)))))
        (setf (annexd--stream-conn st) conn)
        (annexd--send conn "daemon.status" nil
                      (lambda (status error)
                        (unless error (annexd--subscribe-in-boot st conn status)))))
    (annexd-error (annexd--stream-lost st))))

(defun annexd--subscribe-in-boot (st conn status)
  "Subscribe ST on CONN; STATUS is daemon.status's answer on it."
  (let ((boot (alist-get 'boot status)))
    (when (and (annexd--stream-boot st) (not (equal boot (annexd--stream-boot st))))
      ;; annexd restarted: the new boot's events from the first.
      (setf (annexd--stream-last-id st) 0)
      (run-hooks 'annexd-resync-functions))
    (setf (annexd--stream-boot st) boot)
    (let ((since (annexd--stream-last-id st)))
      (annexd--send conn "events.subscribe" (and since `((since . ,since)))
                    (lambda (sub error)
                      (cond (error nil)
                            ((equal (alist-get 'boot sub) boot)
                             (setf (annexd--stream-delay st) 0.1
                                   (annexd--stream-asked st) since
                                   (annexd--stream-delivered st) nil))
                            ;; Restarted between the two calls: start over.
                            (t (delete-process (annexd--conn-process conn)))))))))

(defun annexd--stream-receive (st msg)
  "Handle the notification MSG on ST's connection."
  (let ((p (alist-get 'params msg)))
    (pcase (alist-get 'method msg)
      ("event"
       (let ((id (alist-get 'id p)) (last (annexd--stream-last-id st)))
         (when (and (equal (alist-get 'boot p) (annexd--stream-boot st))
                    (or (null last) (> id last) (equal (alist-get 'type p) "snapshot")))
           (setf (annexd--stream-last-id st) id (annexd--stream-delivered st) t)
           (run-hook-with-args 'annexd-event-functions p))))
      ("event.overflow"
       (let ((resume (alist-get 'resume_from p)))
         (if (and (equal resume (annexd--stream-asked st)) (not (annexd--stream-delivered st)))
             ;; What we asked for is gone: start afresh from a snapshot.
             (progn (setf (annexd--stream-last-id st) nil)
                    (run-hooks 'annexd-resync-functions))
           (setf (annexd--stream-last-id st) resume))
         (delete-process (annexd--conn-process (annexd--stream-conn st))))))))

(defun annexd--stream-lost (st)
  "ST's connection ended or could not be made: try again, doubling the delay."
  (unless (or (annexd--stream-stopped st) (annexd--stream-timer st))
    (let ((delay (annexd--stream-delay st)))
      (setf (annexd--stream-delay st) (min (* 2 delay) annexd-reconnect-max-delay)
            (annexd--stream-timer st) (run-at-time delay nil #'annexd--subscribe st)))))

;;;; Files and repositories

(defun annexd--true-path (file)
  "FILE's absolute name with its directory's symlinks resolved.
The last component is kept: an annexed file is a symlink into .git/annex."
  (let ((f (directory-file-name (expand-file-name file))))
    (concat (file-name-as-directory (file-truename (file-name-directory f)))
            (file-name-nondirectory f))))

(defun annexd--repo-of (file repos)
  "(REPO . ROOT) for FILE: a repository of REPOS (repo.list's) or its git top.
REPO is what to name it to annexd, ROOT its true directory name."
  (let ((f (annexd--true-path file)) best)
    (dolist (r repos)
      (let ((root (file-name-as-directory (file-truename (alist-get 'path r)))))
        (when (and (string-prefix-p root f) (> (length root) (length (cdr best))))
          (setq best (cons (alist-get 'path r) root)))))
    (or best
        (when-let ((top (locate-dominating-file f ".git")))
          (let ((root (file-name-as-directory (file-truename top))))
            (cons (directory-file-name root) root)))
        (user-error "annexd: %s is not in a git-annex repository" file))))

(defun annexd--by-repo (files)
  "FILES grouped by repository: a list of (REPO . PATHS relative to it)."
  (let ((repos (alist-get 'repos (annexd-call "repo.list"))) groups)
    (dolist (file files)
      (pcase-let* ((`(,repo . ,root) (annexd--repo-of file repos))
                   (path (annexd--true-path file))
                   (rel (if (string-prefix-p root path) (substring path (length root)) "."))
                   (group (assoc repo groups)))
        (when (string-empty-p rel) (setq rel "."))
        (if group (setcdr group (append (cdr group) (list rel)))
          (push (list repo rel) groups))))
    (nreverse groups)))

(defun annexd--target-files ()
  "The files a command acts on: dired's marked ones, or this buffer's file."
  (cond ((derived-mode-p 'dired-mode) (dired-get-marked-files))
        (buffer-file-name (list buffer-file-name))
        (t (user-error "annexd: no file here; use this in dired or in a file's buffer"))))

;;;; Commands: get, drop, copy

(defun annexd--start (direction peer files)
  "transfer.start of DIRECTION (to PEER for a put) for FILES: the transfers."
  (cl-loop for (repo . paths) in (annexd--by-repo files)
           append (alist-get 'transfers
                             (annexd-call "transfer.start"
                                          `((repo . ,repo) (direction . ,direction)
                                            (paths . ,(vconcat paths))
                                            ,@(and peer `((peer . ,peer))))))))

(defun annexd--queued-message (verb transfers)
  "Say that TRANSFERS were queued to VERB."
  (if (null transfers)
      (message "annexd: nothing to %s" verb)
    (message "annexd: %d transfer%s queued to %s %s (M-x annexd-transfers)"
             (length transfers) (if (cdr transfers) "s" "") verb
             (mapconcat (lambda (tr) (alist-get 'file tr)) transfers ", "))))

;;;###autoload
(defun annexd-get (&optional files)
  "Get the content of FILES from peers; return the transfers queued.
Interactively: the marked files in dired, or this buffer's file."
  (interactive)
  (annexd--with-user-errors
    (let ((transfers (annexd--start "get" nil (or files (annexd--target-files)))))
      (annexd--queued-message "get" transfers)
      transfers)))

;;;###autoload
(defun annexd-copy (peer &optional files)
  "Copy the content of FILES to PEER (a tor-annex remote's name).
Interactively: the marked files in dired, or this buffer's file; PEER
is read with completion.  Return the transfers queued."
  (interactive (list (annexd--read-remote (annexd--target-files))))
  (annexd--with-user-errors
    (let ((transfers (annexd--start "put" peer (or files (annexd--target-files)))))
      (annexd--queued-message (format "copy to %s:" peer) transfers)
      transfers)))

(defun annexd--read-remote (files)
  "Read the name of a tor-annex remote of the repository of FILES."
  (annexd--with-user-errors
    (let* ((repo (car (car (annexd--by-repo files))))
           (names (mapcar (lambda (r) (alist-get 'name r))
                          (alist-get 'remotes (annexd-call "remote.list" `((repo . ,repo)))))))
      (unless names
        (user-error "annexd: %s has no tor-annex remote to copy to (annex-cli pair, or link one)" repo))
      (completing-read "Copy to peer: " names nil t nil nil (car names)))))

;;;###autoload
(defun annexd-drop (&optional files)
  "Drop the content of FILES here, keeping numcopies elsewhere.
Interactively: the marked files in dired, or this buffer's file.
Return content.drop's results; a file not dropped is a `user-error'."
  (interactive)
  (annexd--with-user-errors
    (let* ((results (cl-loop for (repo . paths) in (annexd--by-repo (or files (annexd--target-files)))
                             append (alist-get 'results
                                               (annexd-call "content.drop"
                                                            `((repo . ,repo) (paths . ,(vconcat paths)))))))
           (failed (cl-remove-if (lambda (r) (alist-get 'dropped r)) results)))
      (when failed
        (user-error "annexd: could not drop %s%s"
                    (mapconcat (lambda (r) (format "%s (%s)" (alist-get 'file r)
                                                   (alist-get 'message (alist-get 'error r))))
                               failed "; ")
                    (let ((n (- (length results) (length failed))))
                      (if (> n 0) (format "; dropped %d other%s" n (if (> n 1) "s" "")) ""))))
      (message "annexd: dropped %s" (mapconcat (lambda (r) (alist-get 'file r)) results ", "))
      results)))

;;;; Buffers (annexd-buffers.el)

(autoload 'annexd-transfers "annexd-buffers"
  "Show annexd's transfers, updated from its events." t)
(autoload 'annexd-peers "annexd-buffers"
  "Show the remotes and peers of an annexd repository." t)

(provide 'annexd)

;;; annexd.el ends here
