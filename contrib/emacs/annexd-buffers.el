;;; annexd-buffers.el --- annexd's transfers and peers in buffers  -*- lexical-binding: t; -*-

;; Part of the annexd package (annexd.el has its headers).

;;; Commentary:

;; `annexd-transfers' lists the transfers (transfer.list),
;; kept up to date from annexd's event stream; `annexd-peers' lists a
;; repository's tor-annex remotes (those it dials) and peers (those with a
;; token to dial it), with the remotes' state from remote.connected and
;; remote.disconnected events.

;;; Code:

(require 'annexd)
(require 'tabulated-list)

(defun annexd--buffers (mode)
  "The live buffers in MODE."
  (cl-remove-if-not (lambda (b) (eq (buffer-local-value 'major-mode b) mode)) (buffer-list)))

(defun annexd--size (bytes)
  "BYTES for people (nil: empty)."
  (if bytes (file-size-human-readable bytes) ""))

(defun annexd--show (name mode fill)
  "Show buffer NAME in MODE, filled by calling FILL in it; return it.
The event stream that keeps it current is started first."
  (let ((buf (get-buffer-create name)))
    (with-current-buffer buf
      (unless (eq major-mode mode) (funcall mode))
      (annexd--with-user-errors
        (annexd-events-start)
        (funcall fill))
      (tabulated-list-print t))
    (pop-to-buffer-same-window buf)
    buf))

;;;; Transfers

(defvar-local annexd--transfers nil "This buffer's transfers: id -> transfer.")

(defvar annexd-transfers-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map "c" #'annexd-transfers-cancel)
    (define-key map "p" #'annexd-transfers-pause)
    (define-key map "r" #'annexd-transfers-resume)
    (define-key map "R" #'annexd-transfers-retry)
    map)
  "Keys of `annexd-transfers-mode'.")

(define-derived-mode annexd-transfers-mode tabulated-list-mode "annexd-transfers"
  "annexd's transfers, updated from its events.
\\<annexd-transfers-mode-map>\\[annexd-transfers-cancel] cancel, \
\\[annexd-transfers-pause] pause, \\[annexd-transfers-resume] resume, \
\\[annexd-transfers-retry] retry the transfer at point;
\\[revert-buffer] re-read them."
  (setq tabulated-list-format [("File" 28 t) ("Dir" 4 t) ("Peer" 12 t) ("State" 9 t)
                               ("Progress" 18 nil) ("Rate" 9 nil) ("Repository" 24 t) ("Note" 0 nil)]
        tabulated-list-entries #'annexd--transfers-entries
        annexd--transfers (make-hash-table :test #'equal))
  (add-hook 'tabulated-list-revert-hook #'annexd--transfers-read nil t)
  (tabulated-list-init-header))

;;;###autoload
(defun annexd-transfers ()
  "Show annexd's transfers, updated from its events."
  (interactive)
  (annexd--show "*annexd transfers*" #'annexd-transfers-mode #'annexd--transfers-read))

(defun annexd--transfers-read ()
  "Fill this buffer's transfers from transfer.list."
  (clrhash annexd--transfers)
  (dolist (tr (alist-get 'transfers (annexd-call "transfer.list")))
    (puthash (alist-get 'id tr) tr annexd--transfers)))

(defun annexd--transfers-entries ()
  "The rows of the transfers buffer, oldest first."
  (let (rows)
    (maphash (lambda (id tr) (push (list id (annexd--transfer-row tr)) rows)) annexd--transfers)
    (sort rows (lambda (a b) (< (alist-get 'queued_at (gethash (car a) annexd--transfers) 0)
                                (alist-get 'queued_at (gethash (car b) annexd--transfers) 0))))))

(defun annexd--transfer-row (tr)
  "The columns for the transfer TR."
  (let-alist tr
    (vector (or .file .key "") (or .direction "") (or .peer.name .peer.uuid "") (or .state "")
            (if (and .size (> .size 0))
                (format "%3d%% %s/%s" (floor (* 100.0 (or .bytes 0)) .size)
                        (annexd--size .bytes) (annexd--size .size))
              (annexd--size .bytes))
            (if (and .rate (> .rate 0)) (concat (annexd--size (round .rate)) "/s") "")
            (abbreviate-file-name (or .repo ""))
            (cond (.error.message .error.message)
                  (.next_retry (format-time-string "retry at %T" (seconds-to-time .next_retry)))
                  (t "")))))

(defun annexd--transfers-on-event (event)
  "Update the transfers buffers from EVENT."
  (let* ((type (alist-get 'type event))
         (changed (cond ((equal type "transfer.progress") (alist-get 'transfers event))
                        ((string-prefix-p "transfer." type) (list (alist-get 'transfer event))))))
    (when changed
      (dolist (buf (annexd--buffers 'annexd-transfers-mode))
        (with-current-buffer buf
          (dolist (tr changed) (annexd--transfers-put tr))
          (tabulated-list-print t))))))

(defun annexd--transfers-put (tr)
  "Put TR in this buffer's transfers, over the fields it had."
  (let ((old (gethash (alist-get 'id tr) annexd--transfers)))
    (puthash (alist-get 'id tr)
             (append tr (cl-remove-if (lambda (cell) (assq (car cell) tr)) old))
             annexd--transfers)))

(defun annexd--transfers-resync ()
  "Re-read the transfers of every transfers buffer (events were missed)."
  (dolist (buf (annexd--buffers 'annexd-transfers-mode))
    (with-current-buffer buf
      (annexd-call-async "transfer.list" nil
                         (lambda (result)
                           (when (buffer-live-p buf)
                             (with-current-buffer buf
                               (clrhash annexd--transfers)
                               (mapc #'annexd--transfers-put (alist-get 'transfers result))
                               (tabulated-list-print t))))))))

(add-hook 'annexd-event-functions #'annexd--transfers-on-event)
(add-hook 'annexd-resync-functions #'annexd--transfers-resync)

(defun annexd--transfers-act (method verb)
  "Call METHOD (transfer.cancel...) on the transfer at point; VERB for people."
  (let ((id (or (tabulated-list-get-id) (user-error "annexd: no transfer here"))))
    (annexd--with-user-errors
      (let ((done (alist-get 'transfers (annexd-call method `((ids . ,(vector id)))))))
        (mapc #'annexd--transfers-put done)
        (tabulated-list-print t)
        (if done
            (message "annexd: %s %s" verb (alist-get 'file (car done)))
          (message "annexd: not %s: the transfer is %s" verb
                   (alist-get 'state (gethash id annexd--transfers))))))))

(defmacro annexd--define-transfer-action (name method verb doc)
  "Define NAME, a command calling METHOD on the transfer at point.
VERB says what it did; DOC is its documentation."
  (declare (indent defun) (doc-string 4))
  `(defun ,name ()
     ,doc
     (interactive)
     (annexd--transfers-act ,method ,verb)))

(annexd--define-transfer-action annexd-transfers-cancel "transfer.cancel" "canceled"
  "Cancel the transfer at point (a get keeps its partial).")
(annexd--define-transfer-action annexd-transfers-pause "transfer.pause" "paused"
  "Pause the transfer at point.")
(annexd--define-transfer-action annexd-transfers-resume "transfer.resume" "resumed"
  "Resume the paused transfer at point.")
(annexd--define-transfer-action annexd-transfers-retry "transfer.retry" "retried"
  "Retry the failed or canceled transfer at point, now.")

;;;; Peers

(defvar-local annexd--peers-repo nil "The repository this peers buffer shows.")
(defvar-local annexd--remote-states nil "Remote name -> state text, from events.")

(define-derived-mode annexd-peers-mode tabulated-list-mode "annexd-peers"
  "A repository's tor-annex remotes and peers.
Remotes are the repositories it dials (their state comes from annexd's
events while it watches them); peers hold a token to dial it."
  (setq tabulated-list-format [("Name" 16 t) ("Kind" 7 t) ("State" 28 nil) ("Details" 0 nil)]
        annexd--remote-states (make-hash-table :test #'equal))
  (add-hook 'tabulated-list-revert-hook #'annexd--peers-read nil t)
  (tabulated-list-init-header))

;;;###autoload
(defun annexd-peers (repo)
  "Show the tor-annex remotes and peers of REPO and their state.
Interactively, REPO is read among annexd's repositories."
  (interactive (list (annexd--read-repo)))
  (annexd--show (format "*annexd peers: %s*" (abbreviate-file-name repo)) #'annexd-peers-mode
                (lambda () (setq annexd--peers-repo repo) (annexd--peers-read))))

(defun annexd--read-repo ()
  "Read one of annexd's repositories, the one holding this file first."
  (annexd--with-user-errors
    (let* ((paths (mapcar (lambda (r) (alist-get 'path r))
                          (alist-get 'repos (annexd-call "repo.list"))))
           (here (cl-find-if (lambda (p) (file-in-directory-p default-directory p)) paths)))
      (unless paths (user-error "annexd serves no repository yet (annex-cli repo add DIR)"))
      (completing-read "Repository: " paths nil t nil nil (or here (car paths))))))

(defun annexd--peers-read ()
  "Fill this buffer from remote.list and peer.list."
  (let* ((params `((repo . ,annexd--peers-repo)))
         (watched (alist-get 'remotes (alist-get 'settings (annexd-call "repo.info" params)))))
    (setq tabulated-list-entries
          (append
           (mapcar (lambda (r)
                     (let-alist r
                       (list (cons 'remote .name)
                             (vector .name "remote"
                                     (gethash .name annexd--remote-states
                                              (annexd--watch-state .name watched))
                                     (format "%s %s" (or .uuid "") (or .address ""))))))
                   (alist-get 'remotes (annexd-call "remote.list" params)))
           (mapcar (lambda (p)
                     (let-alist p
                       (list (cons 'peer .name)
                             (vector .name "peer" (or .access "")
                                     (if .created (format-time-string "token made %F %R" (seconds-to-time .created)) "")))))
                   (alist-get 'peers (annexd-call "peer.list" params)))))))

(defun annexd--watch-state (name watched)
  "The state of remote NAME before any event: WATCHED is repo.info's remotes."
  (let-alist (cl-find name watched :key (lambda (r) (alist-get 'name r)) :test #'equal)
    (cond ((not .watched) (format "not watched (%s)" (or .skipped "?")))
          (.connected "connected (watching)")
          (t "watched, not connected"))))

(defun annexd--peers-on-event (event)
  "Update the peers buffers from EVENT."
  (let ((type (alist-get 'type event)))
    (dolist (buf (annexd--buffers 'annexd-peers-mode))
      (with-current-buffer buf
        (when (equal (alist-get 'repo event) annexd--peers-repo)
          (pcase type
            ("remote.connected"
             (puthash (alist-get 'name (alist-get 'peer event)) "connected (watching)" annexd--remote-states))
            ("remote.disconnected"
             (let-alist event
               (puthash .peer.name
                        (format "%s%s" .reason (if .next_retry (format-time-string ", retry at %T" (seconds-to-time .next_retry)) ""))
                        annexd--remote-states))))
          (when (or (member type '("remote.connected" "remote.disconnected"))
                    (string-prefix-p "peer." type))
            (annexd--peers-refresh buf)))))))

(defun annexd--peers-refresh (buf)
  "Re-read BUF's remotes and peers without waiting here."
  (run-at-time 0 nil (lambda ()
                       (when (buffer-live-p buf)
                         (with-current-buffer buf
                           (with-demoted-errors "annexd: %S"
                             (annexd--peers-read)
                             (tabulated-list-print t)))))))

(add-hook 'annexd-event-functions #'annexd--peers-on-event)

(provide 'annexd-buffers)

;;; annexd-buffers.el ends here
